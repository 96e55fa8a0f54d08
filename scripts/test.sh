#!/usr/bin/env bash
# The test command: installs what is missing, builds Release, runs the whole suite through CTest.
# Usage: scripts/test.sh            (from anywhere inside the clone)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh gdb
jobs=$(nproc)
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"
