// A float GEMM for a short inner dimension or a thin C: the 1x1 convolutions and linear layers of the
// cifar preset's first stage multiply by only 32 input channels, and the stem's 3x3 convolution has
// 32 output channels, where OpenBLAS spends about as long packing and updating C as computing.
// Here a block of C stays in registers for the whole of k, rows of B are read straight from memory
// (no packing), and each value of C is written once. reference::gemm (core/reference/gemm.h) is what the tests
// hold it to.
#pragma once
#include <cstdint>

namespace mg::kernels {

constexpr int64_t kTinyK = 32, kSmallK = 128, kLongK = 1024;

// Whether gemm_small_k takes this product: float only, n a whole number of vectors, and k <= kTinyK with
// min(m, n) <= 512, k <= kSmallK with min(m, n) <= 128, k <= kLongK with min(m, n) <= 64 (and k <= 256
// if B is transposed), or k >= kLongK with max(m, n) <= 256 and B as stored (then in blocks of k).
bool gemm_small_k_fits(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k);

// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, row-major (the gemm() contract). A transposed A
// is read in place (one value per row of a tile is broadcast either way); a transposed B is first
// copied the right way round into a per-thread buffer (a weight, or a block of a weight gradient's
// rows). Each C value is summed over k in order: the bits depend on the shapes only.
void gemm_small_k(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// C[m,n] = alpha * op(A) * op(B) + bias, bias[j] added to every row (a linear layer's bias): each C
// value is written once, with no pass over C before the product to put the bias there. C is not read.
void gemm_small_k_bias(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                       int64_t lda, const float* b, int64_t ldb, const float* bias, float* c, int64_t ldc);

// C[m,n] = A[m,k] @ B[k,n] where B's row p is the n values at b + b_offsets[p]: a GEMM over rows
// picked from one buffer, as a stride-1 convolution's columns are shifted rows of its padded input
// (core/kernels/conv_shifted.h). n a multiple of 16 (a whole number of vectors on every target).
void gemm_small_k_rows(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                       const int64_t* b_offsets, float* c, int64_t ldc);

}  // namespace mg::kernels
