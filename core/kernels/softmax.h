// softmax and log_softmax along the last dim of a contiguous tensor, row by row in parallel; exp is
// the fast one (core/kernels/fast_math.h) for float. The plain loops of core/reference/softmax.h,
// with std::exp, on the reference path.
#pragma once
#include "maxgrad/core/tensor.h"

namespace mg::kernels {

// y = softmax(x) = e^(x - m) / sum e^(x - m), or with log, y = x - m - log(sum e^(x - m)), per row
// (m: the row's max).
Tensor softmax_last(const Tensor& x, bool log);

// dx = y * (g - sum(g * y)), or with log, dx = g - e^y * sum(g), per row; y and g contiguous.
Tensor softmax_backward_last(const Tensor& y, const Tensor& g, bool log);

}  // namespace mg::kernels
