// The fused residual of add_drop_path: y = x + m[s] * f, one mask value per sample.
#pragma once
#include "maxgrad/core/tensor.h"

namespace mg::kernels {

// y = x + mask[s] * f for every element of sample s (dim 0); x, f of one shape, contiguous; mask
// holds one value per sample. In parallel over the elements (the plain loop of
// core/reference/dropout.h on the reference path).
Tensor add_masked_per_sample(const Tensor& x, const Tensor& f, const Tensor& mask);

}  // namespace mg::kernels
