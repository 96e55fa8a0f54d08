#!/usr/bin/env bash
# maxgrad against PyTorch on this machine, side by side: the table of docs/performance.md.
#
#   scripts/bench_compare.sh [--build DIR] [--rounds 3] [--batches "32 128 256"] [--threads "1 2"]
#                            [--modes "train eval"] [--sizes "32"] [--steps 5] [--warmup 2] [--out FILE]
#                            [--preset cifar|maxvit_t]
#
# For every configuration (mode, threads, batch, image size) it runs maxgrad's bench and then
# scripts/torch_bench.py (torchvision's MaxVit, same widths, same step), --rounds times, alternating
# A B A B so that a background load slows both alike; each run is under /usr/bin/time -v for its peak
# RSS. The machine's sgemm rate (examples/tools/sgemm_rate.cpp, n = 2048, the same OpenBLAS kernels) is measured
# between the rounds too. Every run is one JSON line in --out (default bench_compare.jsonl); the
# summary printed at the end takes medians over the rounds:
#   img/s of each (PyTorch: the faster of its two OpenMP wait policies), the ratio, GFLOP/s = passes x forward GFLOP/img x img/s (passes 3 for a train step:
#   forward + backward ~ 2x forward; 1 for eval), % of the 2-thread sgemm rate, peak RSS of each.
# The image size 64 runs use partition 4 as well (feature maps 32/16/8), for the scaling table.
# --preset maxvit_t compares torchvision's maxvit_t (224x224, 1000 classes; --sizes is ignored), e.g.
#   --preset maxvit_t --modes eval --batches "1 4"   and   --preset maxvit_t --modes train --batches 4
# Needs: a Release build of bench and sgemm_rate (default build/release), /usr/bin/python3 with
# torch and torchvision (Debian's python3-torch, python3-torchvision), /usr/bin/time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/release
rounds=3
batches="32 128 256"
threads_list="1 2"
modes="train eval"
sizes="32"
preset=cifar
steps=5
warmup=2
out=bench_compare.jsonl
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --threads) threads_list=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    *) echo "bench_compare.sh: unknown argument '$1' (see the comment at the top of the script)" >&2; exit 2 ;;
  esac
done
case $preset in
  cifar) ;;
  maxvit_t) sizes=224 ;;
  *) echo "bench_compare.sh: --preset is cifar or maxvit_t, not '$preset'" >&2; exit 2 ;;
esac
for prog in bench sgemm_rate; do
  [ -x "$build/$prog" ] || { echo "bench_compare.sh: $build/$prog is missing: cmake --preset release && cmake --build --preset release" >&2; exit 1; }
done
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null ||
  { echo "bench_compare.sh: /usr/bin/python3 cannot import torch and torchvision (apt-get install python3-torch python3-torchvision)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench_compare.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

: >"$out"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# run LABEL-JSON CMD...: the command's last stdout line (a JSON object) merged with its peak RSS.
run() {
  local extra=$1
  shift
  /usr/bin/time -v "$@" 2>"$tmp" | tail -n 1 >"$tmp.json"
  local rss_kb
  rss_kb=$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$tmp")
  /usr/bin/python3 - "$tmp.json" "$rss_kb" "$extra" >>"$out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["peak_rss_mb"] = round(int(sys.argv[2]) / 1024, 1)
d.update(json.loads(sys.argv[3]))
print(json.dumps(d))
EOF
  tail -n 1 "$out"
  rm -f "$tmp.json"
}

sgemm() { run '{"impl":"sgemm"}' "$build/sgemm_rate" --n 2048 --threads "$1"; }

for r in $(seq 1 "$rounds"); do
  echo "== round $r of $rounds" >&2
  sgemm 2
  sgemm 1
  for mode in $modes; do
    for t in $threads_list; do
      for size in $sizes; do
        for b in $batches; do
          label="{\"impl\":\"maxgrad\",\"round\":$r,\"size\":$size}"
          if [ "$preset" = cifar ]; then model=(--input-size "$size"); else model=(--preset "$preset"); fi
          run "$label" "$build/bench" "${model[@]}" --mode "$mode" --threads "$t" --batch "$b" \
            --steps "$steps" --warmup "$warmup"
          # PyTorch's OpenMP threads spin at their barriers; on a machine with other work on its cores that
          # can cost it several times its speed, so with 2+ threads it also runs with passive waiting,
          # and the summary keeps whichever of the two was faster.
          for omp in ACTIVE PASSIVE; do
            [ "$t" -eq 1 ] && [ "$omp" = PASSIVE ] && continue
            OMP_WAIT_POLICY=$omp run "{\"round\":$r,\"omp\":\"$omp\"}" /usr/bin/python3 "$root/scripts/torch_bench.py" \
              --preset "$preset" --mode "$mode" --threads "$t" --batch "$b" --size "$size" --steps "$steps" \
              --warmup "$warmup"
          done
        done
      done
    done
  done
done
sgemm 2

/usr/bin/python3 - "$out" <<'EOF'
import collections, json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = statistics.median
sg = {t: med([r["gflops"] for r in rows if r["impl"] == "sgemm" and r["threads"] == t] or [float("nan")]) for t in (1, 2)}
print(f"sgemm n=2048 (best of 5 per run, median over runs): 1 thread {sg[1]:.1f} GFLOP/s, 2 threads {sg[2]:.1f} GFLOP/s")
runs = collections.defaultdict(lambda: collections.defaultdict(list))
gflop_img = {}
for r in rows:
    if r["impl"] == "sgemm":
        continue
    key = (r["mode"], r["threads"], r.get("size", 32), r["batch"])
    runs[key][r["impl"]].append(r)
    if r["impl"] == "maxgrad":
        gflop_img[r.get("size", 32)] = r["gflop_per_img"]
print("| mode | threads | image | batch | maxgrad img/s | PyTorch img/s | ratio | maxgrad GFLOP/s | % of sgemm | "
      "peak RSS maxgrad MB | peak RSS PyTorch MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for key in sorted(runs):
    mode, t, size, b = key
    m = runs[key]["maxgrad"]
    by_omp = collections.defaultdict(list)
    for x in runs[key]["pytorch"]:
        by_omp[x.get("omp", "ACTIVE")].append(x)
    p = max(by_omp.values(), key=lambda xs: med([x["img_per_s"] for x in xs])) if by_omp else []
    mi = med([x["img_per_s"] for x in m]) if m else float("nan")
    pi = med([x["img_per_s"] for x in p]) if p else float("nan")
    passes = 3 if mode == "train" else 1
    gf = passes * gflop_img.get(size, float("nan")) * mi
    mr = med([x["peak_rss_mb"] for x in m]) if m else float("nan")
    pr = med([x["peak_rss_mb"] for x in p]) if p else float("nan")
    print(f"| {mode} | {t} | {size} | {b} | {mi:.1f} | {pi:.1f} | {mi / pi:.2f}x | {gf:.1f} | "
          f"{100 * gf / sg[t]:.0f}% of {t}-thread | {mr:.0f} | {pr:.0f} |")
EOF
