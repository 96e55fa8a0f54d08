#!/usr/bin/python3
"""Regenerate the committed golden cases and reference lists in tests/golden/ with torchvision.

    /usr/bin/python3 tests/golden/make_cases.py [--shared ../shared] [--only NAME ...]

Needs PyTorch, torchvision and numpy, and shared/tools/golden.py (imported, not copied: the cases are
made exactly as the public ones are). The project's tests only read the files this writes; they never
need Python. Reruns are byte-identical (fixed seeds, one thread).

Writes, under the folder of this script:
  <case>/{weights,batch,expected}.safetensors, <case>/args.txt   small step_dump cases (see CASES)
  names_cifar.txt, names_maxvit_t.txt   torchvision's state_dict: "name dtype shape" per line
  relative_position_index.txt           torchvision's _get_relative_position_index for P = 2, 3, 4
  flops.txt                             shared/tools/torch_flops.py's count for the presets and the cases
  README.md                             what each case covers
"""
import argparse
import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "..", "shared"), help="the shared/ folder")
ap.add_argument("--only", nargs="*", help="case names to (re)generate (the lists are always rewritten)")
args = ap.parse_args()
sys.path.insert(0, os.path.join(os.path.abspath(args.shared), "tools"))
warnings.filterwarnings("ignore", message=".*meshgrid.*")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
from functools import partial  # noqa: E402
from torchvision.models.maxvit import MaxVit, _get_relative_position_index  # noqa: E402
import golden  # noqa: E402
import safetensors_io  # noqa: E402
import torch_flops  # noqa: E402
from golden import Case  # noqa: E402

# Tiny configurations (a few thousand parameters) so every case stays well under 300 KB. Each line of
# "about" says what the case exercises that the three public cases (stem stride 1, partition 4, one
# head per 16 channels, momentum 0.01, eps 1e-3) do not.
_TINY = dict(input_size=(16, 16), stem=4, channels=(4, 8), layers=(1, 1), head_dim=4, num_classes=5, batch=2)
_HEADS = dict(input_size=(16, 16), stem=8, channels=(8, 12), layers=(1, 1), head_dim=4, num_classes=5, batch=2)
CASES = [
    Case("s2_p2_f64_train_3steps",
         "stem stride 2 (torchvision's own path), 16x16 input, stem 4, channels 4,8, layers 1,1, partition 2 "
         "(grid cell 2x2 then 1x1), head_dim 4 (1 then 2 heads), BatchNorm momentum 0.1 and eps 1e-5, "
         "num_batches_tracked starting from seeded values, batch 2, 5 classes, float64, 3 SGD steps (lr 0.05)",
         stem_stride=2, partition=2, bn_momentum=0.1, bn_eps=1e-5, steps=3, lr=0.05, nbt=7, **_TINY),
    Case("heads_f32_train_2steps",
         "stem stride 1, 16x16, stem 8, channels 8,12, layers 1,1, partition 4 (grid cell 2x2 then 1x1), "
         "head_dim 4 (2 then 3 heads), batch 2, 5 classes, float32, 2 SGD steps, input shifted and scaled "
         "(x = 3*randn + 0.5) so float32 BatchNorm statistics need care",
         stem_stride=1, partition=4, steps=2, x_shift=0.5, x_scale=3.0, dtype="float32", **_HEADS),
    Case("three_stages_f64_train_2steps",
         "3 stages (stem 4, channels 4,4,8, layers 1,2,1: a stride-2 MBConv with equal in/out channels and an "
         "identity-shortcut MBConv), stem stride 1, 16x16 input, partition 2 (the last stage is 2x2), "
         "head_dim 4 (1, 1, 2 heads), batch 3, 7 classes, momentum 0.1, eps 1e-5, float64, 2 SGD steps",
         input_size=(16, 16), stem=4, stem_stride=1, channels=(4, 4, 8), layers=(1, 2, 1), head_dim=4,
         partition=2, num_classes=7, batch=3, bn_momentum=0.1, bn_eps=1e-5, steps=2, dtype="float64"),
    Case("s2_p4_f32_train_3steps",
         "stem stride 2 at 32x32 (16x16 after the stem), stem 8, channels 8,16, layers 1,1, partition 4 "
         "(grid cell 2x2 then 1x1), head_dim 8 (1 then 2 heads), batch 2, 10 classes, momentum 0.1, eps 1e-5, "
         "float32, 3 SGD steps",
         input_size=(32, 32), stem=8, stem_stride=2, channels=(8, 16), layers=(1, 1), head_dim=8, partition=4,
         num_classes=10, batch=2, bn_momentum=0.1, bn_eps=1e-5, steps=3, dtype="float32"),
    Case("s2_p2_f64_eval",
         "the s2_p2 configuration in eval mode, running statistics spread wider (rs_scale 2), float64",
         stem_stride=2, partition=2, bn_momentum=0.1, bn_eps=1e-5, mode="eval", rs_scale=2.0, nbt=50, **_TINY),
    Case("heads_f32_eval",
         "the heads configuration in eval mode, float32, eps 1e-2",
         stem_stride=1, partition=4, bn_eps=1e-2, mode="eval", dtype="float32", **_HEADS),
]


def write_case(c, meta):
    weights, batch, expected, st = golden.run_case(c)
    d = os.path.join(HERE, c.name)
    os.makedirs(d, exist_ok=True)
    safetensors_io.save(weights, os.path.join(d, "weights.safetensors"), metadata={**meta, "case": c.name})
    safetensors_io.save(batch, os.path.join(d, "batch.safetensors"), metadata={**meta, "case": c.name})
    safetensors_io.save(expected, os.path.join(d, "expected.safetensors"),
                        metadata={**meta, "case": c.name, "args": c.args()})
    with open(os.path.join(d, "args.txt"), "w") as f:
        f.write(c.args() + "\n")
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{c.name}: params={st['params']} loss={st['loss']:.10f} tensors={len(expected)} size={size / 1e3:.0f} KB")
    return st, size


def torchvision_model(preset):
    """The presets as the project defines them (shared/spec/cli.md), built by torchvision."""
    if preset == "maxvit_t":
        return torchvision.models.maxvit_t()
    c = Case("cifar", "")  # golden.py's defaults are the cifar preset
    return golden.build(c)


def write_names(preset):
    m = torchvision_model(preset)
    sd = m.state_dict()
    n_params = sum(p.numel() for p in m.parameters())
    with open(os.path.join(HERE, f"names_{preset}.txt"), "w") as f:
        f.write(f"# torchvision {torchvision.__version__} {preset}: {len(sd)} state_dict entries, "
                f"{n_params} parameters; name dtype shape\n")
        for k, v in sd.items():
            f.write(f"{k} {str(v.dtype).replace('torch.', '')} {','.join(map(str, v.shape))}\n")
    print(f"names_{preset}.txt: {len(sd)} entries, {n_params} parameters")


def write_rpi():
    with open(os.path.join(HERE, "relative_position_index.txt"), "w") as f:
        f.write("# torchvision.models.maxvit._get_relative_position_index(P, P): P then the P^2 x P^2 values, row-major\n")
        for p in (2, 3, 4):
            idx = _get_relative_position_index(p, p)
            f.write(f"{p} " + " ".join(str(int(v)) for v in idx.reshape(-1)) + "\n")


def write_flops():
    """torch_flops.py's count (hooks on conv, linear and attention) for the presets and every case here."""
    models = [("cifar", torch_flops.make(stem_stride=1, ch=(32, 64, 128), layers=(2, 2, 2), part=4, stem=32,
                                         head_dim=32), 32),
              ("maxvit_t", torchvision.models.maxvit_t(), 224)]
    models += [(c.name, golden.build(c), c.input_size[0]) for c in CASES if c.input_size[0] == c.input_size[1]]
    with open(os.path.join(HERE, "flops.txt"), "w") as f:
        f.write("# shared/tools/torch_flops.py's forward FLOPs per image: the cifar and maxvit_t presets and each case "
                "here (its args.txt)\n")
        for name, m, size in models:
            n = torch_flops.flops(m, size)
            f.write(f"{name} {n}\n")
            print(f"flops {name}: {n} ({n / 1e9:.3f} GFLOP)")


def main():
    torch.set_num_threads(1)
    meta = {"generator": "tests/golden/make_cases.py (shared/tools/golden.py)", "torch": torch.__version__,
            "torchvision": torchvision.__version__}
    cases = [c for c in CASES if not args.only or c.name in args.only]
    rows = [(c, *write_case(c, meta)) for c in cases]
    write_names("cifar")
    write_names("maxvit_t")
    write_rpi()
    write_flops()
    if not args.only:
        lines = ["# Committed golden cases (small)", "",
                 "Made by `make_cases.py` with `shared/tools/golden.py` (torchvision's own MaxVit, the same recipe as",
                 "`shared/golden`; see its README for the file layout and tolerances). `tests/test_golden.cpp` runs every",
                 "case here and in `$MAXGRAD_SHARED/golden` in-process and applies `check_step.py`'s rule.",
                 "", "| case | what | params | loss | size |", "|---|---|---|---|---|"]
        total = 0
        for c, st, size in rows:
            total += size
            lines.append(f"| `{c.name}` | {c.about} | {st['params']:,} | {st['loss']:.10f} | {size / 1e3:.0f} KB |")
        lines += ["", f"Total {total / 1e3:.0f} KB. Also here, for `tests/test_maxvit.cpp`: `names_cifar.txt`,"
                  " `names_maxvit_t.txt` (torchvision's state_dict names, dtypes and shapes for the two presets),"
                  " `relative_position_index.txt` (torchvision's index for P = 2, 3, 4) and `flops.txt`"
                  " (`shared/tools/torch_flops.py`'s count for the presets and the cases).", "",
                  "Non-square inputs have no golden case: torchvision derives the grid partition from the height alone, so its",
                  "MaxVit fails for H != W (the grid attention's token count no longer matches the bias table).",
                  "`tests/test_maxvit.cpp` checks maxgrad's non-square path by gradcheck and transpose symmetry instead.", ""]
        with open(os.path.join(HERE, "README.md"), "w") as f:
            f.write("\n".join(lines))
        print(f"total {total / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
