// CIFAR-10 training augmentation and normalisation on CHW uint8 images: random crop from a zero-padded image,
// random horizontal flip, then (x/255 - mean) / std per channel. Same order and padding as torchvision's
// RandomCrop(32, padding=4) -> RandomHorizontalFlip() -> ToTensor() -> Normalize(mean, std): padding is
// black in pixel space, so it normalises to -mean/std, not to 0.
//
// Stronger augmentation comes between and after these, as in torchvision's recipe: TrivialAugmentWide or
// RandAugment on the uint8 image after the flip (auto_augment.h), random erasing on the normalised one
// (random_erasing.h). DataLoader applies them all (LoaderOptions in loader.h).
#pragma once

#include <array>
#include <cstdint>

namespace mg::data {

struct Normalization {
  std::array<float, 3> mean, stddev;
};

// Published CIFAR-10 training-set statistics, in RGB order.
constexpr Normalization kCifar10Norm{{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};

// One image's random choices: the top-left corner of the crop inside the padded image, and the flip.
struct AugmentDraw {
  int64_t offset_y = 0, offset_x = 0;  // each in [0, 2 * pad]; pad, pad is the centre (no shift)
  bool flip = false;
};

// Draws from the stream of (seed, epoch, index), index being the sample's index in the dataset, so an
// image gets the same augmentation whatever batch or thread it lands in.
AugmentDraw draw_augment(uint64_t seed, int64_t epoch, int64_t index, int64_t pad, bool random_flip = true);

// dst(c, y, x) = padded(c, y + offset_y, x + offset_x), mirrored in x when flip; padded is src with `pad`
// zero pixels on every side. src and dst are (C,H,W) and must not overlap.
void crop_flip(const uint8_t* src, int64_t channels, int64_t height, int64_t width, int64_t pad,
               const AugmentDraw& draw, uint8_t* dst);

// dst = (src / 255 - mean[c]) / stddev[c] for a (C,H,W) image, C <= 3. Instantiated for float and double.
template <typename T>
void normalize(const uint8_t* src, int64_t channels, int64_t height, int64_t width, const Normalization& norm, T* dst);

}  // namespace mg::data
