#include "maxgrad/data/random_erasing.h"

#include <cmath>

#include "maxgrad/data/random.h"

namespace mg::data {

ErasingBox draw_erasing(uint64_t seed, int64_t epoch, int64_t index, double p, int64_t height, int64_t width,
                        std::array<double, 2> scale, std::array<double, 2> ratio) {
  SplitMix64 rng(stream_key(seed ^ kErasingSalt, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)));
  ErasingBox box;
  if (!(rng.uniform() < p)) return box;
  const double area = static_cast<double>(height * width);
  const double log_lo = std::log(ratio[0]), log_hi = std::log(ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double erase_area = area * (scale[0] + (scale[1] - scale[0]) * rng.uniform());
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * rng.uniform());
    // Python's round(): halves to even, as nearbyint in the default rounding mode.
    const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(erase_area * aspect)));
    const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(erase_area / aspect)));
    if (!(h < height && w < width)) continue;
    box.erase = true, box.height = h, box.width = w;
    box.top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(height - h + 1)));
    box.left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(width - w + 1)));
    return box;
  }
  return box;
}

template <typename T> void erase(T* img, int64_t channels, int64_t height, int64_t width, const ErasingBox& box,
                                 ErasingValue value, uint64_t seed, int64_t epoch, int64_t index) {
  if (!box.erase) return;
  SplitMix64 rng(stream_key(seed ^ kErasingValueSalt, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)));
  // Standard normal values by Box-Muller: two uniforms give two independent normals.
  double spare = 0;
  bool have_spare = false;
  const auto normal = [&]() {
    if (have_spare) {
      have_spare = false;
      return spare;
    }
    const double radius = std::sqrt(-2.0 * std::log(1.0 - rng.uniform()));  // 1 - u in (0, 1]: log is finite
    const double angle = 2.0 * 3.14159265358979323846 * rng.uniform();
    spare = radius * std::sin(angle), have_spare = true;
    return radius * std::cos(angle);
  };
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = box.top; y < box.top + box.height; ++y)
      for (int64_t x = box.left; x < box.left + box.width; ++x)
        img[(c * height + y) * width + x] = value == ErasingValue::random ? static_cast<T>(normal()) : T(0);
}

template void erase<float>(float*, int64_t, int64_t, int64_t, const ErasingBox&, ErasingValue, uint64_t, int64_t,
                           int64_t);
template void erase<double>(double*, int64_t, int64_t, int64_t, const ErasingBox&, ErasingValue, uint64_t, int64_t,
                            int64_t);

}  // namespace mg::data
