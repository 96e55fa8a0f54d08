#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite through CTest.
# Usage: scripts/test.sh [PRESET [CTEST ARGS...]]      (from anywhere inside the clone)
#   scripts/test.sh              Release (build/release), the suite every change must pass
#   scripts/test.sh asan         the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/test.sh tsan -L tsan ThreadSanitizer, the threaded tests only (docs/reliability.md)
# Any further arguments go to ctest (e.g. -R test_data, -L fuzz_replay).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
[ $# -gt 0 ] && shift
case "$preset" in
  release | release-portable | debug | asan | tsan) ;;
  *)
    echo "scripts/test.sh: unknown preset '$preset' (release, release-portable, debug, asan, tsan)" >&2
    exit 2
    ;;
esac
scripts/deps.sh gdb python3-numpy
jobs=$(nproc)
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
ctest --preset "$preset" -j "$jobs" "$@"
