// TrivialAugmentWide and RandAugment, as torchvision 0.14 defines them, on uint8 (C,H,W) images, C = 1 or 3.
//
// The ops are torchvision.transforms.functional's functions of the same names on a uint8 tensor (the tensor
// path, not PIL's), pixel for pixel: tests/test_augment.cpp compares them with torchvision's outputs
// (tests/golden/augment). Where torchvision computes in float32 (the colour blends, the sampling grid of the
// geometric ops) this file does the same float32 operations in the same order, so that truncating to uint8
// lands on the same side.
//
// The policies draw from their own stream, (seed ^ kAutoAugmentSalt, epoch, dataset index), so switching
// them on leaves the crop and flip of every image as it was.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace mg::data {

// ---- the ops: each edits img (C,H,W) in place; angles in degrees, as torchvision takes them ----

// torchvision's _get_inverse_affine_matrix: the 2x3 matrix taking an output point to the input point it
// shows, in coordinates whose origin is the image centre. center (in those coordinates) is the fixed point
// of rotation and shear; translate moves the content by (tx, ty) pixels.
std::array<double, 6> inverse_affine_matrix(std::array<double, 2> center, double angle, std::array<double, 2> translate,
                                            double scale, std::array<double, 2> shear);

// F.affine(img, angle, translate, scale, shear, NEAREST, fill 0, center): center in pixel coordinates
// ((0, 0) is the top-left corner of the image), the image centre when omitted.
void affine(uint8_t* img, int64_t channels, int64_t height, int64_t width, double angle,
            std::array<double, 2> translate, double scale, std::array<double, 2> shear,
            std::optional<std::array<double, 2>> center = std::nullopt);
// F.rotate(img, angle, NEAREST, expand False, fill 0): counter-clockwise about the image centre.
void rotate(uint8_t* img, int64_t channels, int64_t height, int64_t width, double angle);

void adjust_brightness(uint8_t* img, int64_t channels, int64_t height, int64_t width, double factor);
void adjust_saturation(uint8_t* img, int64_t channels, int64_t height, int64_t width, double factor);
void adjust_contrast(uint8_t* img, int64_t channels, int64_t height, int64_t width, double factor);
void adjust_sharpness(uint8_t* img, int64_t channels, int64_t height, int64_t width, double factor);
void posterize(uint8_t* img, int64_t channels, int64_t height, int64_t width, int64_t bits);  // bits in [0, 8]
void solarize(uint8_t* img, int64_t channels, int64_t height, int64_t width, double threshold);
void autocontrast(uint8_t* img, int64_t channels, int64_t height, int64_t width);
void equalize(uint8_t* img, int64_t channels, int64_t height, int64_t width);

// ---- the policies ----

enum class AutoAugment { none, trivial_augment_wide, rand_augment };

// torchvision's op space, in its order: an op draw is an index into this list.
enum class AugmentOp {
  identity,
  shear_x,
  shear_y,
  translate_x,
  translate_y,
  rotate,
  brightness,
  color,
  contrast,
  sharpness,
  posterize,
  solarize,
  auto_contrast,
  equalize
};
constexpr int64_t kNumAugmentOps = 14;
constexpr int64_t kNumMagnitudeBins = 31;  // torchvision's default for both policies

const char* op_name(AugmentOp op);    // torchvision's: "ShearX", "AutoContrast", ...
bool op_has_magnitude(AugmentOp op);  // false for Identity, AutoContrast, Equalize
bool op_is_signed(AugmentOp op);      // the geometric and colour ops: the magnitude is negated with p 0.5

// Magnitude bin `bin` of `num_bins` (unsigned), from torchvision's _augmentation_space: the wide space of
// TrivialAugmentWide, or RandAugment's narrower one, whose translations are 150/331 of the image size.
double op_magnitude(AugmentOp op, int64_t bin, int64_t num_bins, bool wide, int64_t height, int64_t width);

// torchvision's _apply_op: one op at a signed magnitude (shear factor, pixels, degrees, factor - 1, bits,
// threshold).
void apply_op(uint8_t* img, int64_t channels, int64_t height, int64_t width, AugmentOp op, double magnitude);

struct OpDraw {
  AugmentOp op = AugmentOp::identity;
  int64_t bin = 0;        // magnitude bin; 0 for ops without a magnitude
  bool negative = false;  // the sign draw of a signed op
  double magnitude = 0;   // what apply_op receives, sign included
};

// TrivialAugmentWide draws one op, a bin and a sign, each uniform; RandAugment draws rand_augment_ops ops
// (with replacement) and their signs, at the fixed bin rand_augment_magnitude. Same (seed, epoch, index),
// same draws. Empty for AutoAugment::none.
std::vector<OpDraw> draw_auto_augment(AutoAugment policy, uint64_t seed, int64_t epoch, int64_t index, int64_t height,
                                      int64_t width, int64_t rand_augment_ops = 2, int64_t rand_augment_magnitude = 9);

// Applies the draws in order.
void apply_ops(uint8_t* img, int64_t channels, int64_t height, int64_t width, const std::vector<OpDraw>& ops);

}  // namespace mg::data
