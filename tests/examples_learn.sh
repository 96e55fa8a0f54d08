#!/usr/bin/env bash
# The examples for people writing their own models learn what they say they learn, on a small budget:
#   mlp   separates its two moons (at least 95% of the training points after 300 steps) and writes its PNG
#   cnn   beats chance (10%) by a wide margin on the synthetic set: at least 40% test accuracy
#         after 5 epochs of 2,000 images
# Usage: tests/examples_learn.sh mlp|cnn BIN_DIR
set -euo pipefail
which=$1 bin=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
at_least() {  # at_least NAME VALUE MIN
  awk -v v="$2" -v m="$3" 'BEGIN { exit !(v + 0 >= m + 0) }' || { echo "FAIL: $1 is $2%, below $3%"; exit 1; }
}
case "$which" in
  mlp)
    "$bin/mlp" --steps 300 --png "$work/moons.png" | tee "$work/log"
    [ -s "$work/moons.png" ] || { echo "FAIL: mlp wrote no PNG"; exit 1; }
    at_least "mlp's final accuracy" "$(sed -n 's/^final accuracy \([0-9.]*\)%$/\1/p' "$work/log")" 95
    ;;
  cnn)
    "$bin/cnn" --per-class 200 --epochs 5 | tee "$work/log"
    at_least "cnn's test accuracy" "$(sed -n 's/^test accuracy \([0-9.]*\)%$/\1/p' "$work/log")" 40
    ;;
  *) echo "usage: tests/examples_learn.sh mlp|cnn BIN_DIR"; exit 2 ;;
esac
echo PASS
