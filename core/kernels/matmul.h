// The tensor-level products behind the matmul and linear ops: operands read in place where BLAS can
// (a .transpose(-1, -2) view, as every backward makes, is passed with the transpose flag instead of
// being copied), one GEMM per matrix of a batch. The plain loops of core/reference/gemm.h on the
// reference path.
#pragma once
#include "maxgrad/core/tensor.h"

namespace mg::kernels {

// out (batch..., n, m) = a (batch..., n, k) @ b (batch..., k, m), batch dims already equal (a broadcast
// one has stride 0); out contiguous.
template <typename T> void matmul(const Tensor& a, const Tensor& b, Tensor& out);

// y (rows, out) = x (rows, in) @ w (out, in)^T + bias (out), x, w, bias contiguous; bias may be
// undefined. The bias goes in with the product: no pass of its own over y.
template <typename T> void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y);

}  // namespace mg::kernels
