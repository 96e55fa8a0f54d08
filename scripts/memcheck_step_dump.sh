#!/usr/bin/env bash
# step_dump under valgrind memcheck, with the same arguments: usable as check_step.py's --bin, so a
# golden case is checked for memory errors and for its numbers in one run (docs/reliability.md).
#   /usr/bin/python3 ../shared/tools/check_step.py --bin scripts/memcheck_step_dump.sh \
#       --case ../shared/golden/mini_f32_train_1step --timeout 600
# Uses the debug build (build/debug: -O0 -g, no -march=native, whose AVX-512 valgrind 3.19 cannot
# decode). Any invalid access, use of uninitialised memory or definite leak makes it exit 9.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/debug/step_dump
[ -x "$bin" ] || { echo "memcheck_step_dump.sh: $bin is missing: cmake --preset debug && cmake --build --preset debug --target step_dump" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "memcheck_step_dump.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
# MAXGRAD_KEEP_BLAS_CORE=1: step_dump would otherwise re-execute itself to pick OpenBLAS's kernels,
# leaving valgrind watching only the parent.
MAXGRAD_KEEP_BLAS_CORE=1 exec valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite \
  --error-exitcode=9 "$bin" "$@"
