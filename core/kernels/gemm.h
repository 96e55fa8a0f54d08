// Matrix products. gemm() is one OpenBLAS call (row-major), or for float products with a short k or
// a thin C one call of the register-tiled gemm_small_k (core/kernels/gemm_small_k.h); gemm_parallel() splits C into
// fixed blocks run as TBB tasks, or, for a small C with a long k, splits k and adds the partial products in order (the
// split depends only on the shapes, so the bits never depend on the thread count). On the reference path each runs
// reference::gemm (core/reference/gemm.h), the plain triple loop the tests hold the others to.
#pragma once
#include <cstdint>

namespace mg::kernels {

// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, row-major with leading dims lda, ldb, ldc.
template <typename T> void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                                int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

template <typename T> void gemm_parallel(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                                         const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + bias, bias[j] added to every row (a linear layer's): in
// the product's last step where gemm_small_k computes the block, else put in the block's rows just
// before the product adds to them. The same values as filling C with the bias and gemm_parallel with beta 1.
template <typename T> void gemm_parallel_bias(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                                              const T* a, int64_t lda, const T* b, int64_t ldb, const T* bias, T* c,
                                              int64_t ldc);

}  // namespace mg::kernels
