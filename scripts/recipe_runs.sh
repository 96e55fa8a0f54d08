#!/usr/bin/env bash
# The training runs behind docs/recipes.md, one after another, each in its own --out folder under
# RUNS. A run that finished is skipped; one stopped part-way (a session ended, the machine
# rebooted) goes on with --resume, bitwise as if it had never stopped. So the whole table can be
# built over several sittings by running the same command again.
#
#   scripts/recipe_runs.sh [--data DIR] [--runs DIR] [--threads N] NAME...
#   scripts/recipe_runs.sh --list
#
# NAME is a row below. The ablation rows train on 45,000 images and are scored on the 5,000 held
# out (--val-split 500); only the final rows (fast-seed*, long, long-ta-wide) look at the test set.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A RUN=(
  # Ablation of the fast recipe on the validation split: each ingredient off (or on) in turn.
  [fast-val]="--recipe fast --val-split 500"
  [fast-val-reference]="--recipe reference --epochs 6 --val-split 500"
  [fast-val-ema]="--recipe fast --val-split 500 --model-ema-decay 0.999"
  [fast-val-ta-wide]="--recipe fast --val-split 500 --auto-augment ta_wide"
  [fast-val-erase]="--recipe fast --val-split 500 --random-erase 0.25"
  [fast-val-ra]="--recipe fast --val-split 500 --auto-augment ra --ra-magnitude 9"
  [fast-val-mix]="--recipe fast --val-split 500 --mixup-alpha 0.8 --cutmix-alpha 1.0"
  [fast-val-no-smoothing]="--recipe fast --val-split 500 --label-smoothing 0"
  [fast-val-wd-exclusion]="--recipe fast --val-split 500 --norm-bias-decay off"
  [fast-val-depth]="--recipe fast --val-split 500 --stochastic-depth 0.1"
  [fast-val-lr3e-3]="--recipe fast --val-split 500 --crop-padding 4 --lr 3e-3"
  [fast-val-crop4]="--recipe fast --val-split 500 --crop-padding 4"
  # The fast recipe's final figures: all 50,000 training images, three seeds.
  [fast-seed0]="--recipe fast --seed 0"
  [fast-seed1]="--recipe fast --seed 1"
  [fast-seed2]="--recipe fast --seed 2"
  # The long recipe, evaluated every 5 epochs: on 2 cores an evaluation took about 80 s of a fast
  # epoch's 305 s (the training steps 226 s), and the long one adds the averaged weights'.
  [long-val]="--recipe long --val-split 500 --eval-every 5"
  [long]="--recipe long --eval-every 5"
  # The long recipe's first version, with TrivialAugmentWide and erasing: it underfit at 30 epochs
  # (73.9% training accuracy) and ended below long-val's test figure (docs/recipes.md).
  [long-ta-wide]="--recipe long --eval-every 5 --auto-augment ta_wide --random-erase 0.25"
)

data=${MAXGRAD_DATA:-../shared/data/cifar10} runs=runs/recipes threads=()
names=()
while (($#)); do
  case $1 in
    --data) data=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --threads) threads=(--threads "$2"); shift 2 ;;
    --list) for n in "${!RUN[@]}"; do printf '%-24s %s\n' "$n" "${RUN[$n]}"; done | sort; exit 0 ;;
    -*) echo "recipe_runs.sh: unknown option $1" >&2; exit 2 ;;
    *) [[ -v RUN[$1] ]] || { echo "recipe_runs.sh: no run named $1 (--list shows them)" >&2; exit 2; }
       names+=("$1"); shift ;;
  esac
done
((${#names[@]})) || { echo "usage: scripts/recipe_runs.sh [--data DIR] [--runs DIR] NAME... (--list)" >&2; exit 2; }

bin=build/release/train_cifar
[[ -x $bin ]] || { echo "recipe_runs.sh: build first: cmake --preset release && cmake --build --preset release" >&2; exit 2; }
for n in "${names[@]}"; do
  out=$runs/$n
  if [[ -f $out/done ]]; then echo "$n: done ($out)"; continue; fi
  mkdir -p "$out"
  # shellcheck disable=SC2086  # the table's flags are split on purpose
  if [[ -f $out/last.safetensors ]]; then
    echo "$n: resuming in $out"
    "$bin" --resume --out "$out" --data "$data" "${threads[@]}" >>"$out/stdout.txt" 2>>"$out/stderr.txt"
  else
    echo "$n: ${RUN[$n]} -> $out"
    "$bin" ${RUN[$n]} --data "$data" --out "$out" "${threads[@]}" >>"$out/stdout.txt" 2>>"$out/stderr.txt"
  fi
  date -u +%FT%TZ >"$out/done"
  tail -n 3 "$out/stdout.txt"
done
