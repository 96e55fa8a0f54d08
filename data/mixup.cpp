#include "maxgrad/data/mixup.h"

#include <algorithm>
#include <cmath>

#include "maxgrad/core/error.h"

namespace mg::data {

namespace {

constexpr uint64_t kMixupStream = 0x6D69787570ull;  // "mixup": its draws are unrelated to the augmentation's

// N(0, 1) by Box-Muller; 1 - uniform() is in (0, 1], so the log is finite.
double sample_normal(SplitMix64& rng) {
  const double u1 = 1 - rng.uniform(), u2 = rng.uniform();
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

int64_t clip(int64_t v, int64_t hi) { return std::min(std::max<int64_t>(v, 0), hi); }

}  // namespace

// Marsaglia & Tsang, "A simple method for generating gamma variables" (2000), for alpha >= 1:
//   d = alpha - 1/3, c = 1 / sqrt(9 d); draw z ~ N(0, 1) until v = (1 + c z)^3 > 0, and u ~ U(0, 1];
//   accept d v when u < 1 - 0.0331 z^4 (the quick squeeze) or log u < z^2 / 2 + d (1 - v + log v).
// For alpha < 1 the same paper's boost: Gamma(alpha) = Gamma(alpha + 1) U^(1 / alpha) (as Boost and
// numpy do for small shapes), since the acceptance test above needs d >= 2/3.
double sample_gamma(SplitMix64& rng, double alpha) {
  MG_CHECK(alpha > 0, "sample_gamma", "alpha must be > 0, got ", alpha);
  if (alpha < 1) {
    const double u = 1 - rng.uniform();
    return sample_gamma(rng, alpha + 1) * std::pow(u, 1 / alpha);
  }
  const double d = alpha - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  for (;;) {
    double z, v;
    do {
      z = sample_normal(rng);
      v = 1 + c * z;
    } while (v <= 0);
    v = v * v * v;
    const double u = 1 - rng.uniform();
    if (u < 1 - 0.0331 * z * z * z * z) return d * v;
    if (std::log(u) < 0.5 * z * z + d * (1 - v + std::log(v))) return d * v;
  }
}

double sample_beta(SplitMix64& rng, double a, double b) {
  for (;;) {
    const double x = sample_gamma(rng, a), y = sample_gamma(rng, b);
    if (x + y > 0) return x / (x + y);  // both can underflow to 0 only for tiny alphas: draw again
  }
}

void check_mixup_options(const MixupOptions& o) {
  MG_CHECK(o.mixup_alpha >= 0 && o.cutmix_alpha >= 0, "mixup", "mixup_alpha and cutmix_alpha must be >= 0, got ",
           o.mixup_alpha, " and ", o.cutmix_alpha);
  MG_CHECK(o.mixup_alpha > 0 || o.cutmix_alpha > 0, "mixup",
           "mixup_alpha or cutmix_alpha must be > 0 (both are 0: set prob = 0 or skip mixing instead)");
  MG_CHECK(o.prob >= 0 && o.prob <= 1, "mixup", "prob must be in [0, 1], got ", o.prob);
  MG_CHECK(o.switch_prob >= 0 && o.switch_prob <= 1, "mixup", "switch_prob must be in [0, 1], got ", o.switch_prob);
  MG_CHECK(o.label_smoothing >= 0 && o.label_smoothing <= 1, "mixup", "label_smoothing must be in [0, 1], got ",
           o.label_smoothing);
  MG_CHECK(o.num_classes > 0, "mixup", "num_classes must be > 0, got ", o.num_classes);
}

MixDraw draw_mix(const MixupOptions& o, uint64_t seed, int64_t epoch, int64_t batch_index, int64_t height,
                 int64_t width) {
  check_mixup_options(o);
  MG_CHECK(height > 0 && width > 0, "draw_mix", "image size must be positive, got ", height, "x", width);
  SplitMix64 rng(stream_key(seed ^ kMixupStream, static_cast<uint64_t>(epoch), static_cast<uint64_t>(batch_index)));
  MixDraw d;
  if (!(rng.uniform() < o.prob)) return d;
  bool cutmix;
  if (o.mixup_alpha > 0 && o.cutmix_alpha > 0)
    cutmix = rng.uniform() < o.switch_prob;
  else
    cutmix = o.cutmix_alpha > 0;
  const double alpha = cutmix ? o.cutmix_alpha : o.mixup_alpha;
  const double lam = sample_beta(rng, alpha, alpha);
  if (lam == 1.0) return d;  // timm: "if lam == 1.: return 1." (nothing to mix)
  if (!cutmix) {
    d.mixed = true, d.lam = lam;
    return d;
  }
  const int64_t cy = static_cast<int64_t>(rng.below(static_cast<uint64_t>(height)));
  const int64_t cx = static_cast<int64_t>(rng.below(static_cast<uint64_t>(width)));
  return cutmix_box(lam, cy, cx, height, width, o.correct_lam);
}

MixDraw cutmix_box(double lam, int64_t cy, int64_t cx, int64_t height, int64_t width, bool correct_lam) {
  MG_CHECK(lam >= 0 && lam <= 1, "cutmix_box", "lam must be in [0, 1], got ", lam);
  MG_CHECK(cy >= 0 && cy < height && cx >= 0 && cx < width, "cutmix_box", "centre (", cy, ", ", cx, ") is outside the ",
           height, "x", width, " image");
  const double ratio = std::sqrt(1 - lam);  // the box's side as a fraction of the image's
  const int64_t cut_h = static_cast<int64_t>(static_cast<double>(height) * ratio);
  const int64_t cut_w = static_cast<int64_t>(static_cast<double>(width) * ratio);
  MixDraw d;
  d.mixed = d.cutmix = true;
  d.y0 = clip(cy - cut_h / 2, height), d.y1 = clip(cy + cut_h / 2, height);
  d.x0 = clip(cx - cut_w / 2, width), d.x1 = clip(cx + cut_w / 2, width);
  const double area = static_cast<double>((d.y1 - d.y0) * (d.x1 - d.x0));
  d.lam = correct_lam ? 1.0 - area / static_cast<double>(height * width) : lam;
  return d;
}

template <typename T> void apply_mix(const MixDraw& d, T* x, int64_t n, int64_t c, int64_t h, int64_t w,
                                     const int64_t* y, const MixupOptions& o, T* targets) {
  check_mixup_options(o);
  MG_CHECK(n > 0 && c > 0 && h > 0 && w > 0, "apply_mix", "empty batch (", n, ", ", c, ", ", h, ", ", w, ")");
  MG_CHECK(d.lam >= 0 && d.lam <= 1, "apply_mix", "lam must be in [0, 1], got ", d.lam);
  const double lam = d.mixed ? d.lam : 1.0;
  const int64_t k = o.num_classes;
  for (int64_t i = 0; i < n; ++i)
    MG_CHECK(y[i] >= 0 && y[i] < k, "apply_mix", "label y[", i, "] = ", y[i], " is out of range for num_classes ", k);
  const int64_t plane = h * w, image = c * plane;
  // The arithmetic in T with lam and 1 - lam rounded to T, as timm's float32 tensors do it. (GCC may fuse
  // a product and the sum into one fma, which rounds once where torch's mul_ then add_ round twice: the last
  // bit can differ from timm's; tests/test_mixup.cpp allows that.)
  const T a = static_cast<T>(lam), b = static_cast<T>(1 - lam);

  if (d.mixed && d.cutmix) {
    MG_CHECK(0 <= d.y0 && d.y0 <= d.y1 && d.y1 <= h && 0 <= d.x0 && d.x0 <= d.x1 && d.x1 <= w, "apply_mix",
             "box rows [", d.y0, ", ", d.y1, ") columns [", d.x0, ", ", d.x1, ") does not fit a ", h, "x", w, " image");
    // x[i, :, y0:y1, x0:x1] = x[N-1-i, :, y0:y1, x0:x1] for all i at once: pairs swap their boxes.
    for (int64_t i = 0; i < n / 2; ++i)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t r = d.y0; r < d.y1; ++r) {
          T* row_i = x + i * image + ch * plane + r * w;
          T* row_j = x + (n - 1 - i) * image + ch * plane + r * w;
          std::swap_ranges(row_i + d.x0, row_i + d.x1, row_j + d.x0);
        }
  } else if (d.mixed) {
    // x_i = lam x_i + (1 - lam) x_j and x_j = lam x_j + (1 - lam) x_i, j = N-1-i, from the values before.
    for (int64_t i = 0; i <= (n - 1) / 2; ++i) {
      T* xi = x + i * image;
      T* xj = x + (n - 1 - i) * image;
      for (int64_t e = 0; e < image; ++e) {
        const T vi = xi[e], vj = xj[e];
        xi[e] = vi * a + vj * b;
        if (xj != xi) xj[e] = vj * a + vi * b;
      }
    }
  }

  // targets_i = lam smooth(y_i) + (1 - lam) smooth(y_j), smooth(y)_k = on if k == y else off
  const double off = o.label_smoothing / static_cast<double>(k), on = 1 - o.label_smoothing + off;
  const T t_on = static_cast<T>(on), t_off = static_cast<T>(off);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t yi = y[i], yj = y[n - 1 - i];
    for (int64_t cls = 0; cls < k; ++cls)
      targets[i * k + cls] = (cls == yi ? t_on : t_off) * a + (cls == yj ? t_on : t_off) * b;
  }
}

template void apply_mix<float>(const MixDraw&, float*, int64_t, int64_t, int64_t, int64_t, const int64_t*,
                               const MixupOptions&, float*);
template void apply_mix<double>(const MixDraw&, double*, int64_t, int64_t, int64_t, int64_t, const int64_t*,
                                const MixupOptions&, double*);

}  // namespace mg::data
