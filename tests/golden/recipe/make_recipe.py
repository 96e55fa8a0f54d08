#!/usr/bin/python3
"""The references for the training-recipe pieces, from PyTorch and timm's definitions.

    /usr/bin/python3 tests/golden/recipe/make_recipe.py [--shared ../shared]

timm is not a dependency: the few functions used are restated below from timm/data/mixup.py
(one_hot, mixup_target, rand_bbox, cutmix_bbox_and_lam, Mixup._mix_batch) and
timm/utils/model_ema.py (ModelEmaV3.get_decay, apply_update_, apply_update_no_buffers_), with only
the random draws made parameters, so a test can give the same lam and box to both sides.

Writes, next to this script:
  loss.safetensors   F.cross_entropy with probability targets (torch >= 1.10), values and gradients
                     -> tests/test_loss_soft.cpp
  mixup.safetensors  timm's batch-mode mixup and cutmix of a given (lam, box) -> tests/test_mixup.cpp
  ema.safetensors    ModelEmaV3's update over 5 steps and its decay curve     -> tests/test_ema.cpp
and prints torch.optim.AdamW / SGD with a no-decay parameter group (pasted into tests/test_optim.cpp).
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "..", "..", "shared"))
args = ap.parse_args()
sys.path.insert(0, os.path.join(os.path.abspath(args.shared), "tools"))
import safetensors_io  # noqa: E402

META = {"made_by": "tests/golden/recipe/make_recipe.py", "torch": torch.__version__}


def save(tensors, name):
    out = {k: (v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)).copy() for k, v in tensors.items()}
    safetensors_io.save(out, os.path.join(HERE, name), metadata=META)
    print("wrote", os.path.join(HERE, name), f"({len(out)} tensors)")


# ---- 1. cross-entropy with probability targets ----
torch.manual_seed(0)
t = {}
logits = torch.randn(5, 7, dtype=torch.float64) * 2
probs = torch.softmax(torch.randn(5, 7, dtype=torch.float64) * 1.5, 1)
loose = torch.rand(5, 7, dtype=torch.float64)  # does not sum to 1: PyTorch accepts it
t["logits"] = logits
t["target.probs"] = probs
t["target.loose"] = loose
for dtype, dname in ((torch.float64, "f64"), (torch.float32, "f32")):
    for tname, target in (("probs", probs), ("loose", loose)):
        for e in (0.0, 0.1, 0.3):
            x = logits.to(dtype).clone().requires_grad_(True)
            loss = F.cross_entropy(x, target.to(dtype), label_smoothing=e)
            loss.backward()
            key = f"{dname}.{tname}.e{e}"
            t[f"loss.{key}"] = loss.detach()
            t[f"grad.{key}"] = x.grad
save(t, "loss.safetensors")


# ---- 2. mixup / cutmix, timm/data/mixup.py restated ----
def one_hot(x, num_classes, on_value=1., off_value=0.):
    x = x.long().view(-1, 1)
    return torch.full((x.size()[0], num_classes), off_value).scatter_(1, x, on_value)


def mixup_target(target, num_classes, lam=1., smoothing=0.0):
    off_value = smoothing / num_classes
    on_value = 1. - smoothing + off_value
    y1 = one_hot(target, num_classes, on_value=on_value, off_value=off_value)
    y2 = one_hot(target.flip(0), num_classes, on_value=on_value, off_value=off_value)
    return y1 * lam + y2 * (1. - lam)


def rand_bbox(img_shape, lam, cy, cx):  # timm's, margin 0, with the two np.random.randint draws given
    ratio = np.sqrt(1 - lam)
    img_h, img_w = img_shape[-2:]
    cut_h, cut_w = int(img_h * ratio), int(img_w * ratio)
    yl = np.clip(cy - cut_h // 2, 0, img_h)
    yh = np.clip(cy + cut_h // 2, 0, img_h)
    xl = np.clip(cx - cut_w // 2, 0, img_w)
    xh = np.clip(cx + cut_w // 2, 0, img_w)
    return yl, yh, xl, xh


def cutmix_bbox_and_lam(img_shape, lam, cy, cx, correct_lam=True):
    yl, yu, xl, xu = rand_bbox(img_shape, lam, cy, cx)
    if correct_lam:
        bbox_area = (yu - yl) * (xu - xl)
        lam = 1. - bbox_area / float(img_shape[-2] * img_shape[-1])
    return (yl, yu, xl, xu), lam


def mix_batch(x, lam, use_cutmix, cy=0, cx=0, correct_lam=True):  # Mixup._mix_batch after the draws
    box = (0, 0, 0, 0)
    if lam == 1.:
        return 1., box
    if use_cutmix:
        (yl, yh, xl, xh), lam = cutmix_bbox_and_lam(x.shape, lam, cy, cx, correct_lam)
        x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
        box = (yl, yh, xl, xh)
    else:
        x_flipped = x.flip(0).mul_(1. - lam)
        x.mul_(lam).add_(x_flipped)
    return lam, box


torch.manual_seed(1)
K, E = 5, 0.1
x0 = torch.randn(4, 3, 6, 8)  # float32, H != W so the two axes cannot be confused
y0 = torch.tensor([3, 0, 4, 0])
t = {"x": x0, "y": y0, "num_classes": torch.tensor(K), "label_smoothing": torch.tensor(E, dtype=torch.float64)}
cases = {
    "mixup": dict(lam=0.3141592653589793, use_cutmix=False),
    "cutmix": dict(lam=0.6, use_cutmix=True, cy=2, cx=5),
    "cutmix_clipped": dict(lam=0.45, use_cutmix=True, cy=0, cx=7),  # box cut by the top and right borders
    "cutmix_uncorrected": dict(lam=0.45, use_cutmix=True, cy=0, cx=7, correct_lam=False),
    "plain": dict(lam=1.0, use_cutmix=False),  # not mixed: smoothed one-hot targets
}
for name, c in cases.items():
    x = x0.clone()
    lam, box = mix_batch(x, **c)
    t[f"{name}.lam_drawn"] = torch.tensor(c["lam"], dtype=torch.float64)
    t[f"{name}.center"] = torch.tensor([c.get("cy", 0), c.get("cx", 0)])
    t[f"{name}.lam"] = torch.tensor(float(lam), dtype=torch.float64)
    t[f"{name}.box"] = torch.tensor([int(b) for b in box])
    t[f"{name}.x"] = x
    t[f"{name}.targets"] = mixup_target(y0, K, lam, E)
save(t, "mixup.safetensors")


# ---- 3. model EMA, timm/utils/model_ema.py ModelEmaV3 restated ----
class EmaV3:
    def __init__(self, model, decay=0.9999, min_decay=0.0, update_after_step=0, use_warmup=False, warmup_gamma=1.0,
                 warmup_power=2 / 3, exclude_buffers=False):
        import copy
        self.module = copy.deepcopy(model)
        self.decay, self.min_decay, self.update_after_step = decay, min_decay, update_after_step
        self.use_warmup, self.warmup_gamma, self.warmup_power = use_warmup, warmup_gamma, warmup_power
        self.exclude_buffers = exclude_buffers

    def get_decay(self, step=None):
        if step is None:
            return self.decay
        step = max(0, step - self.update_after_step - 1)
        if step <= 0:
            return 0.0
        if self.use_warmup:
            decay = 1 - (1 + step / self.warmup_gamma) ** -self.warmup_power
            decay = max(min(decay, self.decay), self.min_decay)
        else:
            decay = self.decay
        return decay

    @torch.no_grad()
    def update(self, model, step=None):
        decay = self.get_decay(step)
        if self.exclude_buffers:  # apply_update_no_buffers_, the foreach=False branch
            for ema_p, model_p in zip(self.module.parameters(), model.parameters()):
                ema_p.lerp_(model_p, weight=1. - decay)
            for ema_b, model_b in zip(self.module.buffers(), model.buffers()):
                ema_b.copy_(model_b)
        else:  # apply_update_, the foreach=False branch
            for ema_v, model_v in zip(self.module.state_dict().values(), model.state_dict().values()):
                if ema_v.is_floating_point():
                    ema_v.lerp_(model_v, weight=1. - decay)
                else:
                    ema_v.copy_(model_v)


class Tiny(torch.nn.Module):  # the state of a conv + BatchNorm + linear model; the forward is never run
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3)
        self.bn = torch.nn.BatchNorm2d(3)
        self.fc = torch.nn.Linear(3, 4)


configs = {
    "warmup": dict(decay=0.9998, use_warmup=True),
    "plain": dict(decay=0.9),
    "no_buffers": dict(decay=0.75, exclude_buffers=True),
    "after3": dict(decay=0.99, use_warmup=True, warmup_gamma=2.0, warmup_power=0.75, min_decay=0.3,
                   update_after_step=3),
}
t = {}
for dtype, dname in ((torch.float32, "f32"), (torch.float64, "f64")):
    torch.manual_seed(2)
    model = Tiny().to(dtype)
    with torch.no_grad():
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.5, 0.5)
        model.bn.running_mean.normal_()
        model.bn.running_var.uniform_(0.5, 2)
        model.bn.num_batches_tracked.fill_(7)
    states = [{k: v.clone() for k, v in model.state_dict().items()}]
    for s in range(1, 7):  # the training steps between EMA updates, as random moves of every entry
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.is_floating_point():
                    v.add_(torch.randn_like(v) * 0.3)
                else:
                    v.add_(1)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    for i, st in enumerate(states):
        for k, v in st.items():
            t[f"{dname}.model.{i}.{k}"] = v
    for cname, cfg in configs.items():
        with torch.no_grad():
            model.load_state_dict(states[0])
        ema = EmaV3(model, **cfg)
        for s in range(1, 7):
            with torch.no_grad():
                model.load_state_dict(states[s])
            # steps 1..6: timm's train loop passes num_updates (1 after the first optimiser step); the
            # "plain" config's last two updates pass no step (step=None: the fixed decay)
            ema.update(model, None if (cname == "plain" and s >= 5) else s)
            for k, v in ema.module.state_dict().items():
                t[f"{dname}.ema.{cname}.{s}.{k}"] = v.clone()

steps = list(range(0, 12)) + [100, 1000, 10000, 31600, 215400, 1000000]
t["decay.steps"] = torch.tensor(steps)
for cname, cfg in configs.items():
    ema = EmaV3(Tiny(), **cfg)
    t[f"decay.{cname}"] = torch.tensor([ema.get_decay(s) for s in steps], dtype=torch.float64)
for cname, cfg in (("power34", dict(decay=0.9999, use_warmup=True, warmup_power=0.75)),):
    ema = EmaV3(Tiny(), **cfg)
    t[f"decay.{cname}"] = torch.tensor([ema.get_decay(s) for s in steps], dtype=torch.float64)
save(t, "ema.safetensors")


# ---- 4. weight decay with a no-decay group (tests/test_optim.cpp's problem) ----
torch.set_default_dtype(torch.float64)
aa = torch.tensor([[1.0, 2.0, 0.5], [3.0, 0.1, 1.0]])
ba = torch.tensor([[0.2, -0.1, 0.0], [0.05, 0.3, -0.4]])
ab = torch.tensor([0.7, 1.3, 2.0])
bb = torch.tensor([-0.5, 0.25, 0.125])


def run(make, steps=3):
    pa = torch.tensor([[0.5, -1.0, 2.0], [0.25, -0.75, 1.5]], requires_grad=True)
    pb = torch.tensor([0.1, -0.2, 0.3], requires_grad=True)
    opt = make(pa, pb)
    for _ in range(steps):
        pa.grad = aa * pa.detach() + ba
        pb.grad = ab * pb.detach() + bb
        opt.step()
    return pa.detach().flatten().tolist(), pb.detach().tolist()


print("AdamW lr 0.01, groups [pa: wd 0.05], [pb: wd 0]:",
      run(lambda pa, pb: torch.optim.AdamW([{"params": [pa]}, {"params": [pb], "weight_decay": 0.0}], lr=0.01,
                                           weight_decay=0.05)))
print("AdamW lr 0.02 betas (0.8, 0.95) eps 1e-6, groups [pa: wd 0], [pb: wd 0.1]:",
      run(lambda pa, pb: torch.optim.AdamW([{"params": [pa], "weight_decay": 0.0}, {"params": [pb]}], lr=0.02,
                                           betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)))
print("SGD lr 0.1 momentum 0.9, groups [pa: wd 0.01], [pb: wd 0]:",
      run(lambda pa, pb: torch.optim.SGD([{"params": [pa]}, {"params": [pb], "weight_decay": 0.0}], lr=0.1,
                                         momentum=0.9, weight_decay=0.01)))
