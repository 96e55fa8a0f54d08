// Reference matrix products: the plain triple loop, each dot product summed in double, in order.
// What the fast GEMM of core/kernels/gemm.h (OpenBLAS, gemm_small_k, the parallel splits) computes.
#pragma once
#include <cstdint>

#include "maxgrad/core/tensor.h"

namespace mg::reference {

// C (m, n) = alpha * op(A) (m, k) @ op(B) (k, n) + beta * C, row-major with leading dims lda, ldb,
// ldc; op(A) = A^T when trans_a (A is then stored (k, m)), likewise B. beta 0 ignores C, as BLAS does.
//   C[i][j] = alpha * sum_p op(A)[i][p] * op(B)[p][j] + beta * C[i][j]
template <typename T> void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                                int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// The same with a bias instead of C's old values: C[i][j] = alpha * sum_p op(A)[i][p] * op(B)[p][j] + bias[j].
template <typename T> void gemm_bias(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                                     int64_t lda, const T* b, int64_t ldb, const T* bias, T* c, int64_t ldc);

// out (batch..., n, m) = a (batch..., n, k) @ b (batch..., k, m): a and b of any strides (a broadcast
// batch dim has stride 0), out contiguous.
//   out[.., i, j] = sum_p a[.., i, p] * b[.., p, j]
template <typename T> void matmul(const Tensor& a, const Tensor& b, Tensor& out);

// y (rows, out) = x (rows, in) @ w (out, in)^T + bias (out), all contiguous; bias may be undefined.
//   y[r][o] = sum_i x[r][i] * w[o][i] + bias[o]
template <typename T> void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y);

}  // namespace mg::reference
