#include "maxgrad/data/synthetic.h"

#include <algorithm>
#include <cmath>

#include "maxgrad/data/random.h"

namespace mg::data {

const std::vector<std::string>& synthetic_classes() {
  static const std::vector<std::string> names = {"hstripes", "vstripes", "diagonal", "checker", "disc",
                                                 "ring",     "square",   "frame",    "cross",   "triangle"};
  return names;
}

namespace {

constexpr int kSide = 32;

// True where image (x, y) belongs to the foreground of class `label`. Geometry in pixel-centre coordinates.
struct Geometry {
  double cx, cy, r;   // centre and size of the shapes
  int period, phase;  // of the textures
  bool anti;          // diagonal direction
};

bool foreground(int label, const Geometry& g, int x, int y) {
  const double dx = x + 0.5 - g.cx, dy = y + 0.5 - g.cy;
  const double ax = std::abs(dx), ay = std::abs(dy), dist = std::sqrt(dx * dx + dy * dy);
  const auto stripe = [&](int v) { return ((v + g.phase) % g.period) < g.period / 2; };
  switch (label) {
    case 0: return stripe(y);
    case 1: return stripe(x);
    case 2: return stripe(g.anti ? x + y : x - y + kSide);  // + kSide keeps the argument non-negative
    case 3: return ((x + g.phase) / g.period + (y + g.phase) / g.period) % 2 == 0;
    case 4: return dist <= g.r;
    case 5: return dist <= g.r && dist >= g.r - 3;
    case 6: return ax <= 0.8 * g.r && ay <= 0.8 * g.r;
    case 7: return std::max(ax, ay) <= 0.85 * g.r && std::max(ax, ay) >= 0.85 * g.r - 3;
    case 8: return (ax <= 2 && ay <= g.r) || (ay <= 2 && ax <= g.r);
    default: {  // 9: triangle, apex up, symmetric about x = cx so a flip keeps it
      const double top = g.cy - g.r, bottom = g.cy + 0.7 * g.r;
      const double y0 = y + 0.5;
      return y0 >= top && y0 <= bottom && ax <= (y0 - top) / (bottom - top) * g.r;
    }
  }
}

}  // namespace

ImageSet make_synthetic(int64_t n, uint64_t seed, int noise) {
  constexpr int64_t kPlane = kSide * kSide;
  std::vector<uint8_t> pixels(static_cast<size_t>(n * 3 * kPlane));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    SplitMix64 rng(stream_key(seed, static_cast<uint64_t>(i)));
    const int label = static_cast<int>(i % 10);
    Geometry g;
    g.cx = 16 + static_cast<double>(rng.below(9)) - 4;
    g.cy = 16 + static_cast<double>(rng.below(9)) - 4;
    g.r = 7 + static_cast<double>(rng.below(6));
    g.period = 4 + static_cast<int>(rng.below(5)) * 2;  // even, 4..12, so stripes are half on half off
    g.phase = static_cast<int>(rng.below(static_cast<uint64_t>(g.period)));
    g.anti = rng.below(2) == 1;
    // Random colours, the foreground lighter or darker than the background by a random margin: neither
    // colour nor brightness gives the class away, only the shape does.
    const int sign = rng.below(2) ? 1 : -1;
    int bg[3], fg[3];
    for (int c = 0; c < 3; ++c) {
      const int delta = 40 + static_cast<int>(rng.below(81));  // 40..120
      bg[c] = sign > 0 ? static_cast<int>(rng.below(256 - delta)) : delta + static_cast<int>(rng.below(256 - delta));
      fg[c] = bg[c] + sign * delta;
    }
    uint8_t* img = pixels.data() + i * 3 * kPlane;
    for (int y = 0; y < kSide; ++y)
      for (int x = 0; x < kSide; ++x) {
        const bool on = foreground(label, g, x, y);
        for (int c = 0; c < 3; ++c) {
          const int jitter = noise > 0 ? static_cast<int>(rng.below(2 * static_cast<uint64_t>(noise) + 1)) - noise : 0;
          img[c * kPlane + y * kSide + x] = static_cast<uint8_t>(std::clamp((on ? fg[c] : bg[c]) + jitter, 0, 255));
        }
      }
    labels[static_cast<size_t>(i)] = label;
  }
  return ImageSet(ImageShape{3, kSide, kSide}, synthetic_classes(), std::move(pixels), std::move(labels));
}

}  // namespace mg::data
