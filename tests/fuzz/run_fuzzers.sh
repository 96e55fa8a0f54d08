#!/usr/bin/env bash
# Runs the libFuzzer targets, two at a time (one per core of a 2-core machine), each for SECONDS
# (default 600), with ASan+UBSan, a 2 GB memory cap and a 10 s per-input timeout.
#   cmake --preset fuzz && cmake --build --preset fuzz --target fuzz_all
#   tests/fuzz/run_fuzzers.sh [SECONDS [TARGET...]]
# New inputs go to build/fuzz/work/<target>/ (the committed seeds in tests/fuzz/corpus/<target>/ are
# only read), crashes to build/fuzz/artifacts/<target>/, and each run's log, ending with libFuzzer's
# final stats (number_of_executed_units, ...), to build/fuzz/logs/<target>.log. A crasher belongs in
# tests/fuzz/corpus/<target>/ once fixed, where the CTest replay keeps it fixed.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors cifar_binary image checkpoint flags config)
bin=build/fuzz/tests/fuzz
# Images up to 1 MB, with every allocation above 512 MB a finding: decoding is held to a budget of
# about twice the file or the image's raw size (docs/reliability.md), far below that.
declare -A max_len=([cifar_binary]=16384 [checkpoint]=65536 [image]=1048576)
declare -A malloc_limit=([image]=512)

run_one() {
  local t=$1
  mkdir -p "build/fuzz/work/$t" "build/fuzz/artifacts/$t" build/fuzz/logs
  local start=$SECONDS
  "$bin/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    ${max_len[$t]:+-max_len=${max_len[$t]}} ${malloc_limit[$t]:+-malloc_limit_mb=${malloc_limit[$t]}} -artifact_prefix="build/fuzz/artifacts/$t/" \
    "build/fuzz/work/$t" "tests/fuzz/corpus/$t" >"build/fuzz/logs/$t.log" 2>&1
  local rc=$?
  local execs
  execs=$(grep -m1 '^stat::number_of_executed_units' "build/fuzz/logs/$t.log" | awk '{print $2}')
  echo "$t: exit $rc, ${execs:-?} executions in $((SECONDS - start)) s, $(ls "build/fuzz/artifacts/$t" | wc -l) artifacts"
  return $rc
}

status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run_one "${targets[i]}" &
  first=$!
  if ((i + 1 < ${#targets[@]})); then
    run_one "${targets[i + 1]}" &
    wait $! || status=1
  fi
  wait $first || status=1
done
exit $status
