// Matrix products. gemm() is one OpenBLAS call (row-major), or for float products with a short k or
// a thin C one call of the register-tiled gemm_small_k (core/kernels/gemm_small_k.h); gemm_parallel() splits C into
// fixed blocks run as TBB tasks, or, for a small C with a long k, splits k and adds the partial products in order (the
// split depends only on the shapes, so the bits never depend on the thread count); gemm_reference() is the plain triple
// loop the tests hold the others to.
#pragma once
#include <cstdint>

namespace mg::kernels {

// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, row-major with leading dims lda, ldb, ldc.
template <typename T> void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                                int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

template <typename T> void gemm_parallel(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                                         const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

template <typename T> void gemm_reference(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                                          const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace mg::kernels
