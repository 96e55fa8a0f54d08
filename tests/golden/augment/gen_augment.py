#!/usr/bin/python3
"""torchvision's outputs for the ops of TrivialAugmentWide and RandAugment, for tests/test_augment.cpp.

    /usr/bin/python3 tests/golden/augment/gen_augment.py     (torch 1.13, torchvision 0.14)

Each case is one call of torchvision.transforms.autoaugment._apply_op (the dispatcher both policies use:
magnitude -> shear angle, int pixel shift, 1 + magnitude for the colour ops, ...) on a uint8 tensor, with
interpolation NEAREST and fill None (out-of-image pixels are 0), on four fixed images made by formula:
A (3,32,32), B (3,20,24: non-square, sizes not powers of two, channel 1 constant), C (1,24,20, grey) and
D (3,16,16, narrow ranges).
Magnitudes are taken from torchvision's own tables (TrivialAugmentWide's and RandAugment's
_augmentation_space), signs included. Writes, next to this script:

  cases.txt       "image <name> <C> <H> <W>" lines, then "case <image> <op> <magnitude>" lines
  cases.bin       the images' bytes (CHW), then every case's output, in the order of cases.txt
  magnitudes.txt  "<space> <op> <signed> <31 values, or none>": both op spaces in torchvision's order, the
                  tables as torch.linspace gives them on this machine (x86, torch's AVX2 kernels), for TrivialAugmentWide ("wide") and
                  RandAugment ("standard") on a 32x32 image
"""
import os

import torch
import torchvision
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import RandAugment, TrivialAugmentWide, _apply_op

HERE = os.path.dirname(os.path.abspath(__file__))
assert torchvision.__version__.startswith("0.14"), torchvision.__version__
BINS = 31


def image(c, h, w, formula):
    t = torch.empty(c, h, w, dtype=torch.uint8)
    for k in range(c):
        for y in range(h):
            for x in range(w):
                t[k, y, x] = formula(k, y, x)
    return t


images = {
    # Mid-range values (22..232), so the clamps of brightness and contrast and autocontrast's stretch all act.
    "A": image(3, 32, 32, lambda c, y, x: (37 * x + 91 * y + 53 * c + (x * y * (c + 3)) % 29 * 5) % 211 + 22),
    # Channel 1 constant: autocontrast leaves it (max == min) and equalize leaves it (step 0).
    "B": image(3, 20, 24, lambda c, y, x: 90 if c == 1 else (13 * x + 29 * y + 101 * c + x * y % 7) % 256),
    "C": image(1, 24, 20, lambda c, y, x: (11 * x + 17 * y + x * y % 5 * 9) % 200 + 30),
    # Narrow ranges (40, 50, 62 levels): autocontrast's scale 255 / (max - min) is rounded twice by torch
    # (the reciprocal, then * 255), which moves 4 of these pixels by one.
    "D": image(3, 16, 16, lambda c, y, x: 100 + (7 * x + 13 * y + 29 * c + x * y % 11) % (40 + 11 * c)),
}
wide = TrivialAugmentWide()._augmentation_space(BINS)
standard = RandAugment()._augmentation_space(BINS, (32, 32))


def m(space, op, bin_, sign=1):
    return sign * float(space[op][0][bin_].item())


cases = [  # (image, op, magnitude)
    ("A", "ShearX", m(wide, "ShearX", 30)),
    ("A", "ShearX", m(wide, "ShearX", 10, -1)),
    ("A", "ShearY", m(wide, "ShearY", 30, -1)),
    ("A", "TranslateX", m(wide, "TranslateX", 17)),
    ("A", "TranslateX", m(wide, "TranslateX", 5, -1)),
    ("A", "TranslateY", m(wide, "TranslateY", 3)),
    ("A", "Rotate", m(wide, "Rotate", 7)),
    ("A", "Rotate", m(wide, "Rotate", 30, -1)),
    ("A", "Rotate", m(wide, "Rotate", 20)),  # 90 degrees: every sample point lands on a pixel centre
    ("A", "Rotate", m(wide, "Rotate", 10, -1)),
    ("A", "Brightness", m(wide, "Brightness", 30)),
    ("A", "Color", m(wide, "Color", 25)),
    ("A", "Color", m(wide, "Color", 30, -1)),
    ("A", "Contrast", m(wide, "Contrast", 30)),
    ("A", "Contrast", m(wide, "Contrast", 15, -1)),
    ("A", "Sharpness", m(wide, "Sharpness", 30)),
    ("A", "Sharpness", m(wide, "Sharpness", 30, -1)),
    ("A", "Posterize", m(wide, "Posterize", 30)),  # 2 bits
    ("A", "Solarize", m(wide, "Solarize", 15)),
    ("A", "Solarize", m(wide, "Solarize", 30)),  # 0: every pixel inverted
    ("A", "AutoContrast", 0.0),
    ("A", "Equalize", 0.0),
    # RandAugment's default magnitude (bin 9 of its narrower space)
    ("A", "ShearX", m(standard, "ShearX", 9)),
    ("A", "TranslateY", m(standard, "TranslateY", 9, -1)),
    ("A", "Rotate", m(standard, "Rotate", 9, -1)),
    ("A", "Contrast", m(standard, "Contrast", 9)),
    ("B", "ShearX", m(wide, "ShearX", 21, -1)),
    ("B", "ShearY", m(wide, "ShearY", 27)),
    ("B", "TranslateX", m(wide, "TranslateX", 8)),
    ("B", "Rotate", m(wide, "Rotate", 20, -1)),
    ("B", "Rotate", m(wide, "Rotate", 11)),
    ("B", "Contrast", m(wide, "Contrast", 23)),
    ("B", "Color", m(wide, "Color", 19)),
    ("B", "Sharpness", m(wide, "Sharpness", 30)),
    ("B", "AutoContrast", 0.0),
    ("B", "Equalize", 0.0),
    ("C", "Rotate", m(wide, "Rotate", 5)),
    ("C", "Contrast", m(wide, "Contrast", 26)),
    ("C", "Color", m(wide, "Color", 30)),  # a grey image has no saturation to change
    ("C", "Sharpness", m(wide, "Sharpness", 17, -1)),
    ("C", "AutoContrast", 0.0),
    ("C", "Equalize", 0.0),
    ("D", "AutoContrast", 0.0),
    ("D", "Brightness", m(wide, "Brightness", 12, -1)),
    ("D", "Posterize", m(wide, "Posterize", 14)),
]

with open(os.path.join(HERE, "cases.txt"), "w") as txt, open(os.path.join(HERE, "cases.bin"), "wb") as binary:
    txt.write("# made by gen_augment.py: torchvision %s, torch %s\n" % (torchvision.__version__, torch.__version__))
    for name, img in images.items():
        txt.write("image %s %d %d %d\n" % (name, *img.shape))
        binary.write(img.numpy().tobytes())
    for name, op, magnitude in cases:
        out = _apply_op(images[name].clone(), op, magnitude, interpolation=InterpolationMode.NEAREST, fill=None)
        assert out.dtype == torch.uint8 and out.shape == images[name].shape
        txt.write("case %s %s %r\n" % (name, op, magnitude))
        binary.write(out.contiguous().numpy().tobytes())

with open(os.path.join(HERE, "magnitudes.txt"), "w") as txt:
    txt.write("# torch.linspace's float32 values as this machine's torch %s computes them\n" % torch.__version__)
    for space_name, space in (("wide", wide), ("standard", standard)):
        for op, (values, signed) in space.items():  # in torchvision's order, which the op draw indexes
            values = values.tolist() if values.ndim > 0 else []  # no magnitude: a 0-d tensor
            txt.write(" ".join([space_name, op, str(int(signed))] + [repr(float(v)) for v in values]) + "\n")
print("%d cases, %d bytes" % (len(cases), os.path.getsize(os.path.join(HERE, "cases.bin"))))
