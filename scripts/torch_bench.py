#!/usr/bin/python3
"""PyTorch side of the side-by-side benchmark: torchvision's MaxVit in the configuration maxgrad's
`bench` runs, timed the same way (median ms per step after warm-up steps), one JSON line per run.

    /usr/bin/python3 scripts/torch_bench.py --batch 128 --threads 2 --mode train [--steps 5] [--size 32]
    /usr/bin/python3 scripts/torch_bench.py --preset maxvit_t --batch 4 --threads 2 --mode eval

The cifar preset (the default) is built by ../shared/tools/torch_ref_bench.py's make() (stride-1 stem
for 32x32) with the cifar preset's widths; maxvit_t is torchvision's maxvit_t() (224x224, 1000
classes), as maxgrad's `bench --preset maxvit_t` builds it. A train step is forward, cross-entropy,
backward and an AdamW step, as in maxgrad's bench; cpu_ms_per_step is the process's CPU time (all threads) per step, as in
maxgrad's bench. Peak RSS is this process's (ru_maxrss) after the run.
"""
import argparse, json, os, resource, statistics, sys, time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tools"))
from torch_ref_bench import make  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--mode", choices=["train", "eval"], default="train")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", default="32,64,128")
    ap.add_argument("--stem", type=int, default=32)
    ap.add_argument("--preset", choices=["cifar", "maxvit_t"], default="cifar")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.preset == "maxvit_t":
        import torchvision
        m, a.size, classes = torchvision.models.maxvit_t(), 224, 1000
    else:
        m, classes = make(1, input_size=a.size, ch=tuple(int(c) for c in a.channels.split(",")), stem=a.stem), 10
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.randint(0, classes, (a.batch,))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.05)
    m.train(a.mode == "train")

    def step():
        if a.mode == "train":
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
        else:
            with torch.no_grad():
                m(x)

    for _ in range(a.warmup):
        step()
    ms, cpu = [], []
    for _ in range(a.steps):
        t, c = time.perf_counter(), time.process_time()
        step()
        ms.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    med = statistics.median(ms)
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "preset": a.preset, "mode": a.mode, "batch": a.batch,
                      "threads": a.threads, "size": a.size, "ms_per_step": round(med, 1),
                      "img_per_s": round(1e3 * a.batch / med, 2), "cpu_ms_per_step": round(statistics.median(cpu), 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
