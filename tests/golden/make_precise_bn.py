#!/usr/bin/python3
"""The reference for precise BatchNorm statistics (nn/precise_bn.h), from PyTorch.

    /usr/bin/python3 tests/golden/make_precise_bn.py [--shared ../shared]

Two BatchNorm2d layers on two branches of the input, y = bn1(conv1(x)) + bn2(conv2(x)), so that
neither BatchNorm's input depends on the other's normalisation; three batches of different sizes
(4, 3 and 5 images). Expected: the running statistics PyTorch's BatchNorm2d records with
momentum 1.0 in one training forward of the three batches concatenated. Writes
tests/golden/precise_bn/case.safetensors (float64); tests/test_precise_bn.cpp reads it.
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "..", "shared"))
args = ap.parse_args()
sys.path.insert(0, os.path.join(os.path.abspath(args.shared), "tools"))
import safetensors_io  # noqa: E402

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
conv1 = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
conv2 = torch.nn.Conv2d(3, 5, 1, stride=2, bias=True)
bn1 = torch.nn.BatchNorm2d(4, momentum=1.0, eps=1e-3)
bn2 = torch.nn.BatchNorm2d(5, momentum=1.0, eps=1e-5)
with torch.no_grad():
    for bn in (bn1, bn2):
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
batches = [torch.randn(n, 3, 6, 6) * 2 + 0.7 for n in (4, 3, 5)]
whole = torch.cat(batches)
with torch.no_grad():
    bn1.train(), bn2.train()
    bn1(conv1(whole)), bn2(conv2(whole))

t = {
    "conv1.weight": conv1.weight, "conv2.weight": conv2.weight, "conv2.bias": conv2.bias,
    "bn1.weight": bn1.weight, "bn1.bias": bn1.bias, "bn2.weight": bn2.weight, "bn2.bias": bn2.bias,
    "expected.bn1.running_mean": bn1.running_mean, "expected.bn1.running_var": bn1.running_var,
    "expected.bn2.running_mean": bn2.running_mean, "expected.bn2.running_var": bn2.running_var,
}
for i, b in enumerate(batches):
    t[f"batch.{i}"] = b
out = {k: v.detach().numpy().copy() for k, v in t.items()}
safetensors_io.save(out, os.path.join(HERE, "precise_bn", "case.safetensors"),
                    metadata={"made_by": "tests/golden/make_precise_bn.py", "torch": torch.__version__})
print("wrote", os.path.join(HERE, "precise_bn", "case.safetensors"))
