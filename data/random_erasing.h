// Random erasing (Zhong et al. 2017), as torchvision.transforms.RandomErasing: with probability p, a
// rectangle of the *normalised* image (it comes after Normalize in torchvision's recipe) is overwritten,
// with 0 (the dataset's mean colour; torchvision's value=0, the default here) or with standard normal
// values, one per pixel and channel (torchvision's value='random', timm's mode='pixel').
//
// The rectangle: its area a uniform fraction of the image in `scale`, its aspect ratio h/w log-uniform in
// `ratio`, h = round(sqrt(area * ratio)) and w = round(sqrt(area / ratio)); a draw that does not fit is
// drawn again, up to 10 times, after which the image is left as it is. Then a uniform position.
#pragma once

#include <array>
#include <cstdint>

namespace mg::data {

enum class ErasingValue { zero, random };

struct ErasingBox {
  bool erase = false;  // false: not chosen (p), or no draw fitted in 10 attempts
  int64_t top = 0, left = 0, height = 0, width = 0;
};

// Draws from the stream (seed ^ kErasingSalt, epoch, index): the choice, then the attempts, then the place.
ErasingBox draw_erasing(uint64_t seed, int64_t epoch, int64_t index, double p, int64_t height, int64_t width,
                        std::array<double, 2> scale = {0.02, 0.33}, std::array<double, 2> ratio = {0.3, 3.3});

// Overwrites box in img (C,H,W). The random values come from the stream (seed ^ kErasingValueSalt, epoch,
// index). Instantiated for float and double.
template <typename T> void erase(T* img, int64_t channels, int64_t height, int64_t width, const ErasingBox& box,
                                 ErasingValue value, uint64_t seed, int64_t epoch, int64_t index);

}  // namespace mg::data
