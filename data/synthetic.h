// A built-in stand-in for CIFAR-10: 10 classes of 32x32 RGB images generated from a seed, for examples and
// tests on machines without the real data. Each class is a shape or texture (stripes, checkerboard, disc,
// ring, square, frame, cross, triangle) jittered in position and size, in random colours, lighter or darker
// than its background, plus pixel noise: only the shape tells the class. Learnable but not trivial: a
// 256-unit MLP on grey pixels reaches about 80% test accuracy (10,000 training images, 4 epochs); a CNN
// should do better. Every class stays itself under a horizontal flip or a small shift, so the usual
// augmentation applies.
#pragma once

#include "maxgrad/data/image_set.h"

namespace mg::data {

const std::vector<std::string>& synthetic_classes();

// n images, image i of class i % 10. Image i depends only on (seed, i), so a larger n extends a smaller one.
// noise is the amplitude of the uniform per-pixel noise, in 0..255 units.
ImageSet make_synthetic(int64_t n, uint64_t seed, int noise = 24);

}  // namespace mg::data
