#!/usr/bin/env bash
# The gdb walkthrough of docs/batchnorm.md, run in batch mode against the Debug preset's
# batchnorm_step, with its printed values checked one by one (run_doc.sh compares the whole
# transcript; this names exactly which value went wrong, and checks nothing was optimised out).
#
# Usage: tests/teaching/gdb_batchnorm.sh     Exit 77 (skipped) only when gdb is not installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

if ! command -v gdb >/dev/null 2>&1; then
  echo "SKIP: gdb is not installed (scripts/deps.sh gdb installs it); the walkthrough of docs/batchnorm.md needs it"
  exit 77
fi

# The Debug build of batchnorm_step and the libraries it links (about a minute from nothing).
[ -f build/debug/CMakeCache.txt ] || cmake --preset debug >/dev/null
grep -q '^CMAKE_BUILD_TYPE:STRING=Debug$' build/debug/CMakeCache.txt ||
  { echo "FAIL: build/debug is not a Debug build; reconfigure it with: cmake --preset debug"; exit 1; }
cmake --build --preset debug --target batchnorm_step -j "$(nproc)" >/dev/null

# The session exactly as the document prints it: its ```sh block that starts gdb.
session=$(awk '/^```sh[ ]*$/ { inb = 1; buf = ""; next }
               inb && /^```/ { inb = 0; if (buf ~ /gdb -batch/) { printf "%s", buf; exit } next }
               inb { buf = buf $0 "\n" }' docs/batchnorm.md)
[ -n "$session" ] || { echo "FAIL: docs/batchnorm.md has no \`\`\`sh block running gdb -batch"; exit 1; }
echo "running, from docs/batchnorm.md:"
echo "$session" | sed 's/^/    /'
out=$(bash -e -c "$session" 2>&1) || { echo "FAIL: the session exited with an error:"; echo "$out"; exit 1; }
echo "$out" | sed 's/^/  | /'

fail=0
expect() {  # a whole line the session must print
  grep -qxF -- "$1" <<<"$out" || { echo "FAIL: gdb did not print the line: $1"; fail=1; }
}
# Stopped in the update function by name, on the first forward (momentum 0.01, 36 values a channel).
grep -qE 'Breakpoint 1, mg::batch_norm_update_stats \(.*count=36, momentum=0\.01\) at batch_norm\.cpp:[0-9]+$' \
  <<<"$out" || { echo "FAIL: gdb did not stop in mg::batch_norm_update_stats with count=36, momentum=0.01"; fail=1; }
# info args
expect "count = 36"
expect "momentum = 0.01"
# info locals, channel 0: batch mean 2, biased variance 1.25, unbiased 1.25 * 36/35, and the update
expect "c = 0"
expect "mean = 2"
expect "var_biased = 1.25"
expect "var_unbiased = 1.2857142857142858"
expect "old_mean = 0"
expect "old_var = 1"
expect "new_mean = 0.02"
expect "new_var = 1.0028571428571429"
# print var_biased * count / (count - 1)
expect "\$1 = 1.2857142857142858"
# A Debug build shows every value: nothing optimised out, no inlined frames to step through.
if grep -qiE '<optimized out>|inlined' <<<"$out"; then
  echo "FAIL: some values were optimised out or inlined: is build/debug built with -O0 -g3 -fno-inline?"
  fail=1
fi
[ $fail -eq 0 ] && echo "PASS: the gdb walkthrough of docs/batchnorm.md prints the documented values"
exit $fail
