#!/usr/bin/env bash
# The main job: installs what is missing, builds Release, and trains the cifar preset with the
# default recipe (shared/refs.md). Extra arguments go to train_cifar, e.g.
#   scripts/train.sh --epochs 2            # the 2-epoch schedule
#   scripts/train.sh --subset 500 --epochs 1   # a quick run
# Data, first found: --data DIR; $MAXGRAD_DATA; ./data/cifar10 (train/ + test/ folders or the
# official binary batches); the JPEG tarballs of ../shared/data/cifar10 (extracted once into
# ./data/cifar10). Without any, train_cifar says how to get CIFAR-10 and trains on a synthetic set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target train_cifar predict

args=("$@")
have_data=0
for a in "${args[@]}"; do [ "$a" = "--data" ] && have_data=1; done
if [ $have_data -eq 0 ]; then
  data="${MAXGRAD_DATA:-data/cifar10}"
  if [ ! -d "$data/train" ] && [ ! -e "$data/data_batch_1.bin" ] && [ ! -d "$data/cifar-10-batches-bin" ] &&
     [ -f ../shared/data/cifar10/train.tar.gz ]; then
    echo "extracting ../shared/data/cifar10 into $data (once)"
    mkdir -p "$data"
    tar -xzf ../shared/data/cifar10/train.tar.gz -C "$data"
    tar -xzf ../shared/data/cifar10/test.tar.gz -C "$data"
  fi
  [ -d "$data" ] && args=(--data "$data" "${args[@]}")
fi
mkdir -p runs
exec build/release/train_cifar --out runs/cifar "${args[@]}"
