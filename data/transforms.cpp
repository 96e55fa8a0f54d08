#include "maxgrad/data/transforms.h"

#include <stdexcept>
#include <string>

#include "maxgrad/data/random.h"

namespace mg::data {

AugmentDraw draw_augment(uint64_t seed, int64_t epoch, int64_t index, int64_t pad, bool random_flip) {
  SplitMix64 rng(stream_key(seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)));
  AugmentDraw d;
  d.offset_y = static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * pad + 1)));
  d.offset_x = static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * pad + 1)));
  d.flip = random_flip && (rng.next() >> 63) != 0;  // top bit: p = 0.5
  return d;
}

void crop_flip(const uint8_t* src, int64_t channels, int64_t height, int64_t width, int64_t pad,
               const AugmentDraw& draw, uint8_t* dst) {
  // Shift of the source relative to the output: output (y, x) reads source (y + dy, x + dx).
  const int64_t dy = draw.offset_y - pad, dx = draw.offset_x - pad;
  for (int64_t c = 0; c < channels; ++c) {
    const uint8_t* s = src + c * height * width;
    uint8_t* d = dst + c * height * width;
    for (int64_t y = 0; y < height; ++y) {
      const int64_t sy = y + dy;
      for (int64_t x = 0; x < width; ++x) {
        const int64_t cx = draw.flip ? width - 1 - x : x;  // flip after crop: column x shows cropped column cx
        const int64_t sx = cx + dx;
        const bool inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
        d[y * width + x] = inside ? s[sy * width + sx] : 0;
      }
    }
  }
}

template <typename T>
void normalize(const uint8_t* src, int64_t channels, int64_t height, int64_t width, const Normalization& norm, T* dst) {
  if (channels < 1 || channels > 3)
    throw std::invalid_argument("normalize: " + std::to_string(channels) + " channels, statistics exist for 1..3");
  const int64_t plane = height * width;
  for (int64_t c = 0; c < channels; ++c) {
    // Folded into one multiply-add: x * scale + shift == (x / 255 - mean) / stddev.
    const T scale = T(1) / (T(255) * static_cast<T>(norm.stddev[c]));
    const T shift = -static_cast<T>(norm.mean[c]) / static_cast<T>(norm.stddev[c]);
    for (int64_t p = 0; p < plane; ++p) dst[c * plane + p] = static_cast<T>(src[c * plane + p]) * scale + shift;
  }
}

template void normalize<float>(const uint8_t*, int64_t, int64_t, int64_t, const Normalization&, float*);
template void normalize<double>(const uint8_t*, int64_t, int64_t, int64_t, const Normalization&, double*);

}  // namespace mg::data
