#!/usr/bin/env bash
# Size budgets that docs/autograd.md, README.md and the docs' own rules promise readers (tinygrad keeps its own the same
# way): the autograd engine fits in one sitting, and an op file is a page, not a subsystem.
#   engine:   core/autograd.h + core/autograd.cpp        at most 300 lines together
#   op files: each core/ops/*.cpp                         at most 250 lines
#   docs:     docs/performance.md under 30 KB, docs/results/ under 20 files (today's product, not its
#             history: per-change measurements belong in commit bodies)
# A change that needs more moves machinery out (into core/kernels/, or a file of its own), or
# changes the promise in the docs and here together.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
engine=$(cat core/autograd.h core/autograd.cpp | wc -l)
echo "engine: core/autograd.h + core/autograd.cpp = $engine lines (budget 300)"
[ "$engine" -le 300 ] || { echo "FAIL the engine is over its budget"; status=1; }
for f in core/ops/*.cpp; do
  n=$(wc -l <"$f")
  [ "$n" -le 250 ] || { echo "FAIL $f has $n lines (budget 250)"; status=1; }
done
longest=$(wc -l core/ops/*.cpp | grep -v ' total$' | sort -n | tail -1)
echo "longest op file: $longest (budget 250)"
perf=$(wc -c <docs/performance.md)
echo "docs/performance.md: $perf bytes (budget 30000)"
[ "$perf" -lt 30000 ] || { echo "FAIL docs/performance.md is over its budget"; status=1; }
results=$(find docs/results -type f | wc -l)
echo "docs/results: $results files (budget 19)"
[ "$results" -lt 20 ] || { echo "FAIL docs/results has $results files"; status=1; }
exit $status
