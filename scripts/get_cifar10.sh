#!/usr/bin/env bash
# Downloads the official CIFAR-10 binary archive, checks its MD5 against the one published on
# https://www.cs.toronto.edu/~kriz/cifar.html, and unpacks it where train_cifar looks by default.
# Usage: scripts/get_cifar10.sh [DEST]     (default ./data/cifar10; then `train_cifar --data DEST`)
set -euo pipefail
url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
md5="c32a1d4ab5d03f1284b67883e8d87530"
dest="${1:-data/cifar10}"

if [ -f "$dest/cifar-10-batches-bin/data_batch_1.bin" ]; then
  echo "CIFAR-10 is already in $dest/cifar-10-batches-bin"
  exit 0
fi
mkdir -p "$dest"
archive="$dest/cifar-10-binary.tar.gz"
if [ ! -f "$archive" ]; then
  echo "downloading $url (162 MB) ..."
  # Into a temporary name first: an interrupted download never passes for the archive.
  if command -v curl >/dev/null; then
    curl -fL --retry 3 -o "$archive.part" "$url"
  elif command -v wget >/dev/null; then
    wget -O "$archive.part" "$url"
  else
    echo "error: neither curl nor wget is installed; download $url by hand into $dest" >&2
    exit 1
  fi
  mv "$archive.part" "$archive"
fi
echo "checking MD5 ..."
if ! echo "$md5  $archive" | md5sum -c --quiet -; then
  echo "error: $archive does not have the published MD5 $md5 (damaged download?); delete it and retry" >&2
  exit 1
fi
tar -xzf "$archive" -C "$dest"
rm "$archive"
echo "CIFAR-10 is in $dest/cifar-10-batches-bin: train with  train_cifar --data $dest"
