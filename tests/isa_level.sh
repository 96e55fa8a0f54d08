#!/bin/sh
# Runs a program with maxgrad_core's kernels for one ISA level of a portable build (CMakeLists.txt,
# "instruction sets"), whatever level the dynamic loader would pick for this CPU:
#
#   tests/isa_level.sh LEVEL PROGRAM [ARGS...]     LEVEL: x86-64, x86-64-v3 or x86-64-v4
#   tests/isa_level.sh LEVEL --check BENCH         that LEVEL's library is the one loaded
#
# glibc's loader, run by hand, searches only the glibc-hwcaps folders named by --glibc-hwcaps-mask
# (no folder is named x86-64, so that level is the baseline library). Exits 77 (skipped) when this CPU
# lacks the level.
set -eu
level=$1
shift
ldso=/lib64/ld-linux-x86-64.so.2
[ -x "$ldso" ] || { echo "SKIP: no $ldso (not x86-64 glibc)"; exit 77; }
if [ "$level" != x86-64 ] && ! "$ldso" --help | grep -q "^  $level (supported"; then
  echo "SKIP: this CPU does not support $level"
  exit 77
fi
if [ "$1" = --check ]; then
  out=$("$ldso" --glibc-hwcaps-mask "$level" "$2" --batch 1 --steps 1 --warmup 0 --mode eval 2>&1)
  echo "$out"
  echo "$out" | grep -q "\"isa\":\"$level\"" || { echo "FAIL: bench did not load the $level kernels"; exit 1; }
  exit 0
fi
exec "$ldso" --glibc-hwcaps-mask "$level" "$@"
