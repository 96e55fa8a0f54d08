#include "maxgrad/data/auto_augment.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "maxgrad/data/random.h"

namespace mg::data {

namespace {

// ---- float32 arithmetic as torch's CPU kernels do it ----
// torch rounds every product to float before it adds; GCC (-ffp-contract=fast, its default for C++) would fuse
// a * b + c into one FMA, rounded once, which moves a truncation to uint8 by one now and then. A product
// stored through a volatile is rounded on its own, whatever the compiler's contraction setting.
float mul32(float a, float b) {
  volatile float p = a * b;
  return p;
}
// The same for Python's double arithmetic.
double mul64(double a, double b) {
  volatile double p = a * b;
  return p;
}

constexpr double kPi = 3.14159265358979323846;  // Python's math.radians and math.degrees, factor for factor
constexpr double kDegToRad = kPi / 180.0, kRadToDeg = 180.0 / kPi;

void check_channels(const char* op, int64_t channels) {
  if (channels != 1 && channels != 3)
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(channels) +
                                " channels; torchvision defines it for 1 (grey) or 3 (RGB)");
}

// ---- geometry ----

// torchvision's F_t.affine with NEAREST and fill 0: for each output pixel, a grid point
// g = [x, y, 1] @ (theta^T / [W/2, H/2]) in [-1, 1] coordinates (x, y being the pixel centre relative to the
// image centre, so -15.5 .. 15.5 for 32 pixels), then grid_sample(align_corners=False): the source pixel is
// round_half_even((g + 1) * W/2 - 0.5), and 0 outside the image. theta is the matrix in float32, and the
// product is one BLAS sgemm row: x * t0, then fma(y, t1, .), then + t2.
void affine_nearest(uint8_t* img, int64_t channels, int64_t height, int64_t width, const std::array<double, 6>& m) {
  const std::vector<uint8_t> src(img, img + channels * height * width);
  const float half_w = static_cast<float>(0.5 * static_cast<double>(width));
  const float half_h = static_cast<float>(0.5 * static_cast<double>(height));
  float t[6];
  for (int k = 0; k < 6; ++k) t[k] = static_cast<float>(m[k]) / (k < 3 ? half_w : half_h);
  const float scale_x = static_cast<float>(width) / 2, scale_y = static_cast<float>(height) / 2;
  for (int64_t y = 0; y < height; ++y) {
    const float py = static_cast<float>(static_cast<double>(y) - 0.5 * static_cast<double>(height - 1));
    for (int64_t x = 0; x < width; ++x) {
      const float px = static_cast<float>(static_cast<double>(x) - 0.5 * static_cast<double>(width - 1));
      const float gx = std::fma(py, t[1], mul32(px, t[0])) + t[2];
      const float gy = std::fma(py, t[4], mul32(px, t[3])) + t[5];
      const float sx = std::nearbyint(mul32(gx + 1.f, scale_x) - 0.5f);
      const float sy = std::nearbyint(mul32(gy + 1.f, scale_y) - 0.5f);
      const bool inside = sx >= 0 && sx < static_cast<float>(width) && sy >= 0 && sy < static_cast<float>(height);
      const int64_t offset = inside ? static_cast<int64_t>(sy) * width + static_cast<int64_t>(sx) : -1;
      for (int64_t c = 0; c < channels; ++c)
        img[(c * height + y) * width + x] = inside ? src[static_cast<size_t>(c * height * width + offset)] : 0;
    }
  }
}

// ---- colour ----

// rgb_to_grayscale for uint8: 0.2989 r + 0.587 g + 0.114 b in float32, truncated to uint8 (.to(uint8)).
// gray is (H,W); for one channel it is the channel itself.
std::vector<uint8_t> grayscale(const uint8_t* img, int64_t channels, int64_t plane) {
  std::vector<uint8_t> gray(img, img + plane);
  if (channels == 3)
    for (int64_t p = 0; p < plane; ++p) {
      const float r = mul32(0.2989f, img[p]), g = mul32(0.587f, img[plane + p]), b = mul32(0.114f, img[2 * plane + p]);
      gray[static_cast<size_t>(p)] = static_cast<uint8_t>(r + g + b);
    }
  return gray;
}

// _blend for uint8: (ratio * img1 + (1 - ratio) * img2).clamp(0, 255) in float32, then .to(uint8), which
// truncates. ratio is torchvision's Python float; each factor is rounded to float32 on its own, as torch
// casts a Python scalar when it multiplies a tensor.
struct Blend {
  float ratio, rest;
  explicit Blend(double r) : ratio(static_cast<float>(r)), rest(static_cast<float>(1.0 - r)) {}
  uint8_t operator()(uint8_t img1, float img2) const {
    return static_cast<uint8_t>(std::clamp(mul32(ratio, img1) + mul32(rest, img2), 0.f, 255.f));
  }
};

}  // namespace

// ---- the ops ----

std::array<double, 6> inverse_affine_matrix(std::array<double, 2> center, double angle, std::array<double, 2> translate,
                                            double scale, std::array<double, 2> shear) {
  // Affine map M = T * C * RSS * C^-1 (translation, centre, rotation-scale-shear); this is M^-1, expression
  // for expression as torchvision writes it (so the float32 theta made from it is the same).
  const double rot = angle * kDegToRad, sx = shear[0] * kDegToRad, sy = shear[1] * kDegToRad;
  const auto [cx, cy] = center;
  const auto [tx, ty] = translate;
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  std::array<double, 6> m = {d, -b, 0.0, -c, a, 0.0};
  for (double& v : m) v /= scale;
  m[2] += mul64(m[0], -cx - tx) + mul64(m[1], -cy - ty);
  m[5] += mul64(m[3], -cx - tx) + mul64(m[4], -cy - ty);
  m[2] += cx;
  m[5] += cy;
  return m;
}

void affine(uint8_t* img, int64_t channels, int64_t height, int64_t width, double angle,
            std::array<double, 2> translate, double scale, std::array<double, 2> shear,
            std::optional<std::array<double, 2>> center) {
  check_channels("affine", channels);
  if (!(scale > 0)) throw std::invalid_argument("affine: scale must be positive, got " + std::to_string(scale));
  // torchvision moves the centre to image-centred coordinates: (0, 0) pixel coordinates is (-W/2, -H/2).
  std::array<double, 2> c = {0.0, 0.0};
  if (center) c = {(*center)[0] - static_cast<double>(width) * 0.5, (*center)[1] - static_cast<double>(height) * 0.5};
  affine_nearest(img, channels, height, width, inverse_affine_matrix(c, angle, translate, scale, shear));
}

void rotate(uint8_t* img, int64_t channels, int64_t height, int64_t width, double angle) {
  check_channels("rotate", channels);
  // F.rotate passes -angle: affine's angle turns clockwise, rotate's counter-clockwise.
  affine_nearest(img, channels, height, width, inverse_affine_matrix({0.0, 0.0}, -angle, {0.0, 0.0}, 1.0, {0.0, 0.0}));
}

// Blend with black: img * factor.
void adjust_brightness(uint8_t* img, int64_t channels, int64_t height, int64_t width, double factor) {
  check_channels("adjust_brightness", channels);
  const Blend blend(factor);
  for (int64_t i = 0; i < channels * height * width; ++i) img[i] = blend(img[i], 0.f);
}

// Blend with the image's grey version (uint8, per pixel); a grey image is left as it is.
void adjust_saturation(uint8_t* img, int64_t channels, int64_t height, int64_t width, double factor) {
  check_channels("adjust_saturation", channels);
  if (channels == 1) return;
  const int64_t plane = height * width;
  const std::vector<uint8_t> gray = grayscale(img, channels, plane);
  const Blend blend(factor);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t p = 0; p < plane; ++p) img[c * plane + p] = blend(img[c * plane + p], gray[static_cast<size_t>(p)]);
}

// Blend with the mean grey level, one float32 number: the mean of the uint8 grey image, which torch takes as a
// float32 sum, then one division. Up to 65793 pixels (2^24 / 255, e.g. 256x256) that sum is exact in
// float32, so the integer sum here gives the same mean; beyond, torch's sum rounds and this one does not.
void adjust_contrast(uint8_t* img, int64_t channels, int64_t height, int64_t width, double factor) {
  check_channels("adjust_contrast", channels);
  const int64_t plane = height * width;
  const std::vector<uint8_t> gray = grayscale(img, channels, plane);
  int64_t sum = 0;
  for (uint8_t v : gray) sum += v;
  const float mean = static_cast<float>(sum) / static_cast<float>(plane);
  const Blend blend(factor);
  for (int64_t i = 0; i < channels * plane; ++i) img[i] = blend(img[i], mean);
}

// Blend with a blurred copy: 3x3 kernel [1 1 1; 1 5 1; 1 1 1] / 13 inside, the border pixels kept (and
// blended with themselves, which can still move them: 1.5 v - 0.5 v in float32 is not always v).
// torchvision convolves in float32 and rounds to nearest; the exact value (sum + 4 * centre) / 13 is never
// within 1/26 of a tie, far beyond float32's error, so integer rounding gives the same uint8.
void adjust_sharpness(uint8_t* img, int64_t channels, int64_t height, int64_t width, double factor) {
  check_channels("adjust_sharpness", channels);
  if (height <= 2 || width <= 2) return;
  const std::vector<uint8_t> src(img, img + channels * height * width);
  std::vector<uint8_t> blurred = src;
  for (int64_t c = 0; c < channels; ++c) {
    const uint8_t* s = src.data() + c * height * width;
    for (int64_t y = 1; y < height - 1; ++y)
      for (int64_t x = 1; x < width - 1; ++x) {
        int64_t sum = 4 * s[y * width + x];
        for (int64_t dy = -1; dy <= 1; ++dy)
          for (int64_t dx = -1; dx <= 1; ++dx) sum += s[(y + dy) * width + x + dx];
        blurred[static_cast<size_t>((c * height + y) * width + x)] = static_cast<uint8_t>((2 * sum + 13) / 26);
      }
  }
  const Blend blend(factor);
  for (size_t i = 0; i < src.size(); ++i) img[i] = blend(src[i], blurred[i]);
}

// Keeps the top `bits` bits of every value.
void posterize(uint8_t* img, int64_t channels, int64_t height, int64_t width, int64_t bits) {
  check_channels("posterize", channels);
  if (bits < 0 || bits > 8)
    throw std::invalid_argument("posterize: bits must be in [0, 8], got " + std::to_string(bits));
  const uint8_t mask = static_cast<uint8_t>(0xFF00u >> bits);  // bits ones, then zeros
  for (int64_t i = 0; i < channels * height * width; ++i) img[i] &= mask;
}

// Inverts (255 - v) every value >= threshold; the comparison is in float32, as torch compares uint8 with a
// Python float.
void solarize(uint8_t* img, int64_t channels, int64_t height, int64_t width, double threshold) {
  check_channels("solarize", channels);
  const float t = static_cast<float>(threshold);
  for (int64_t i = 0; i < channels * height * width; ++i)
    if (static_cast<float>(img[i]) >= t) img[i] = static_cast<uint8_t>(255 - img[i]);
}

// Stretches each channel to [0, 255]: (v - min) * scale in float32, truncated; a constant channel is left as
// it is. scale is torchvision's 255.0 / (max - min), which torch computes as (1 / (max - min)) * 255: a Python
// number divided by a tensor is the tensor's reciprocal times the number, two roundings.
void autocontrast(uint8_t* img, int64_t channels, int64_t height, int64_t width) {
  check_channels("autocontrast", channels);
  const int64_t plane = height * width;
  for (int64_t c = 0; c < channels; ++c) {
    uint8_t* p = img + c * plane;
    const auto [lo, hi] = std::minmax_element(p, p + plane);
    if (*lo == *hi) continue;
    const float minimum = *lo, scale = mul32(1.f / static_cast<float>(*hi - *lo), 255.f);
    for (int64_t i = 0; i < plane; ++i)
      p[i] = static_cast<uint8_t>(std::clamp(mul32(static_cast<float>(p[i]) - minimum, scale), 0.f, 255.f));
  }
}

// Histogram equalisation per channel, torchvision's _scale_channel (PIL's ImageOps.equalize): step is the
// number of pixels that are not of the brightest value present, / 255; value v maps to
// (pixels below v + step / 2) / step, all in integers. A channel with step 0 is left as it is.
void equalize(uint8_t* img, int64_t channels, int64_t height, int64_t width) {
  check_channels("equalize", channels);
  const int64_t plane = height * width;
  for (int64_t c = 0; c < channels; ++c) {
    uint8_t* p = img + c * plane;
    if (plane == 0) return;
    std::array<int64_t, 256> hist{};
    for (int64_t i = 0; i < plane; ++i) ++hist[p[i]];
    int64_t brightest = 255;
    while (hist[static_cast<size_t>(brightest)] == 0) --brightest;
    const int64_t step = (plane - hist[static_cast<size_t>(brightest)]) / 255;
    if (step == 0) continue;
    std::array<uint8_t, 256> lut{};
    int64_t below = 0;  // pixels of values < v
    for (int v = 0; v < 256; ++v) {
      lut[static_cast<size_t>(v)] = static_cast<uint8_t>(std::min<int64_t>((below + step / 2) / step, 255));
      below += hist[static_cast<size_t>(v)];
    }
    for (int64_t i = 0; i < plane; ++i) p[i] = lut[p[i]];
  }
}

// ---- the policies ----

const char* op_name(AugmentOp op) {
  static const char* const names[kNumAugmentOps] = {
      "Identity", "ShearX",   "ShearY",    "TranslateX", "TranslateY", "Rotate",       "Brightness",
      "Color",    "Contrast", "Sharpness", "Posterize",  "Solarize",   "AutoContrast", "Equalize"};
  return names[static_cast<int>(op)];
}

bool op_has_magnitude(AugmentOp op) {
  return op != AugmentOp::identity && op != AugmentOp::auto_contrast && op != AugmentOp::equalize;
}

bool op_is_signed(AugmentOp op) {
  return op_has_magnitude(op) && op != AugmentOp::posterize && op != AugmentOp::solarize;
}

namespace {

// torch.linspace(start, end, n)[i] in float32, value for value as torch 1.13's CPU kernel makes it on x86
// (AVX2, its default there). ATen's algorithm: step = (end - start) / (n - 1) in float32, counted from start
// in the first half and back from end in the second, so both ends are exact; the multiply-add fused, as the
// compiler built it. Except that the first 16 * (n / 16) values are made 8 at a time: base + k * step from
// the value at a multiple of 8. That is 1 ulp away in a few entries, and int() of the translations sees it:
// bin 15 of TrivialAugmentWide's 32-pixel table is 16.0 this way, 15.999999 from torch's AVX-512 kernel.
float linspace(double start, double end, int64_t n, int64_t i) {
  const float s = static_cast<float>(start), e = static_cast<float>(end);
  if (n == 1) return s;
  const float step = (e - s) / static_cast<float>(n - 1);
  const auto one_by_one = [&](int64_t j) {
    return j < n / 2 ? std::fma(step, static_cast<float>(j), s) : std::fma(-step, static_cast<float>(n - 1 - j), e);
  };
  if (i >= n / 16 * 16) return one_by_one(i);
  const int64_t base = i / 8 * 8;
  return one_by_one(base) + mul32(static_cast<float>(i - base), step);
}

}  // namespace

double op_magnitude(AugmentOp op, int64_t bin, int64_t num_bins, bool wide, int64_t height, int64_t width) {
  if (num_bins < 1 || bin < 0 || bin >= num_bins)
    throw std::invalid_argument("op_magnitude: bin " + std::to_string(bin) + " outside [0, " +
                                std::to_string(num_bins) + ")");
  switch (op) {
    case AugmentOp::shear_x:
    case AugmentOp::shear_y: return linspace(0.0, wide ? 0.99 : 0.3, num_bins, bin);
    case AugmentOp::translate_x:
      return linspace(0.0, wide ? 32.0 : 150.0 / 331.0 * static_cast<double>(width), num_bins, bin);
    case AugmentOp::translate_y:
      return linspace(0.0, wide ? 32.0 : 150.0 / 331.0 * static_cast<double>(height), num_bins, bin);
    case AugmentOp::rotate: return linspace(0.0, wide ? 135.0 : 30.0, num_bins, bin);
    case AugmentOp::brightness:
    case AugmentOp::color:
    case AugmentOp::contrast:
    case AugmentOp::sharpness: return linspace(0.0, wide ? 0.99 : 0.9, num_bins, bin);
    case AugmentOp::posterize: {
      // 8 - round(arange(n) / ((n - 1) / 6)): 8 down to 2 bits (4 for RandAugment), the quotient in float32
      const float per_bit = static_cast<float>(static_cast<double>(num_bins - 1) / (wide ? 6.0 : 4.0));
      return 8.0 - std::nearbyint(static_cast<float>(bin) / per_bit);
    }
    case AugmentOp::solarize: return linspace(255.0, 0.0, num_bins, bin);
    default: return 0.0;
  }
}

void apply_op(uint8_t* img, int64_t channels, int64_t height, int64_t width, AugmentOp op, double magnitude) {
  const int64_t c = channels, h = height, w = width;
  switch (op) {
    case AugmentOp::identity: check_channels("identity", c); return;
    // Shear factor m as the angle atan(m), about the top-left corner (pixel (0, 0)), as TF's AutoAugment.
    case AugmentOp::shear_x:
      return affine(img, c, h, w, 0.0, {0, 0}, 1.0, {std::atan(magnitude) * kRadToDeg, 0.0}, {{0, 0}});
    case AugmentOp::shear_y:
      return affine(img, c, h, w, 0.0, {0, 0}, 1.0, {0.0, std::atan(magnitude) * kRadToDeg}, {{0, 0}});
    // Whole pixels: Python's int() truncates toward zero.
    case AugmentOp::translate_x: return affine(img, c, h, w, 0.0, {std::trunc(magnitude), 0}, 1.0, {0, 0});
    case AugmentOp::translate_y: return affine(img, c, h, w, 0.0, {0, std::trunc(magnitude)}, 1.0, {0, 0});
    case AugmentOp::rotate: return rotate(img, c, h, w, magnitude);
    case AugmentOp::brightness: return adjust_brightness(img, c, h, w, 1.0 + magnitude);
    case AugmentOp::color: return adjust_saturation(img, c, h, w, 1.0 + magnitude);
    case AugmentOp::contrast: return adjust_contrast(img, c, h, w, 1.0 + magnitude);
    case AugmentOp::sharpness: return adjust_sharpness(img, c, h, w, 1.0 + magnitude);
    case AugmentOp::posterize: return posterize(img, c, h, w, static_cast<int64_t>(magnitude));
    case AugmentOp::solarize: return solarize(img, c, h, w, magnitude);
    case AugmentOp::auto_contrast: return autocontrast(img, c, h, w);
    case AugmentOp::equalize: return equalize(img, c, h, w);
  }
  throw std::invalid_argument("apply_op: unknown op " + std::to_string(static_cast<int>(op)));
}

std::vector<OpDraw> draw_auto_augment(AutoAugment policy, uint64_t seed, int64_t epoch, int64_t index, int64_t height,
                                      int64_t width, int64_t rand_augment_ops, int64_t rand_augment_magnitude) {
  if (policy == AutoAugment::none) return {};
  if (rand_augment_ops < 0)
    throw std::invalid_argument("draw_auto_augment: rand_augment_ops must be >= 0, got " +
                                std::to_string(rand_augment_ops));
  SplitMix64 rng(stream_key(seed ^ kAutoAugmentSalt, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)));
  const bool wide = policy == AutoAugment::trivial_augment_wide;
  const int64_t num_ops = wide ? 1 : rand_augment_ops;
  std::vector<OpDraw> draws(static_cast<size_t>(num_ops));
  // As torchvision: the op uniform; the bin uniform (TrivialAugmentWide) or fixed (RandAugment), drawn only
  // for ops with a magnitude; the sign drawn only for signed ops.
  for (OpDraw& d : draws) {
    d.op = static_cast<AugmentOp>(rng.below(kNumAugmentOps));
    if (op_has_magnitude(d.op)) {
      d.bin = wide ? static_cast<int64_t>(rng.below(kNumMagnitudeBins)) : rand_augment_magnitude;
      d.magnitude = op_magnitude(d.op, d.bin, kNumMagnitudeBins, wide, height, width);
    }
    if (op_is_signed(d.op)) {
      d.negative = (rng.next() >> 63) != 0;  // top bit: p = 0.5
      if (d.negative) d.magnitude = -d.magnitude;
    }
  }
  return draws;
}

void apply_ops(uint8_t* img, int64_t channels, int64_t height, int64_t width, const std::vector<OpDraw>& ops) {
  for (const OpDraw& d : ops) apply_op(img, channels, height, width, d.op, d.magnitude);
}

}  // namespace mg::data
