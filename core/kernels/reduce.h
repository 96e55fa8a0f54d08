// The loops of the reductions: sums arranged as (kept, reduced), each output summed in double in a
// fixed order (lanes, core/kernels/lanes.h), so any thread count gives the same bits; and argmax.
// The plain loops of core/reference/reduce.h on the reference path.
#pragma once
#include <vector>

#include "maxgrad/core/tensor.h"

namespace mg::kernels {

// out (out_shape) = x summed over the dims d with reduced[d] (out_shape: the kept dims, with or
// without the reduced ones as 1).
Tensor sum(const Tensor& x, const std::vector<bool>& reduced, const Shape& out_shape);

// idx (x's shape without dim, int64) = the index of the first maximum of x along dim.
Tensor argmax(const Tensor& x, int64_t dim);

}  // namespace mg::kernels
