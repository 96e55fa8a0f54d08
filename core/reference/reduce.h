// Reference reductions: every element visited once in row-major order, added in double to the
// output element it belongs to. What core/kernels/reduce.h computes in lanes and in parallel.
#pragma once
#include <vector>

#include "maxgrad/core/tensor.h"

namespace mg::reference {

// out (out_shape) = x summed over the dims d with reduced[d]:
//   out[kept index] = sum over the reduced indices of x[kept index, reduced indices]
template <typename T> void sum(const Tensor& x, const std::vector<bool>& reduced, Tensor& out);

// idx (x's shape without dim) = the index of the first maximum of x along dim:
//   idx[i, .., k] = the first j with x[i, .., j, .., k] = max over j of x[i, .., j, .., k]
template <typename T> void argmax(const Tensor& x, int64_t dim, Tensor& idx);

}  // namespace mg::reference
