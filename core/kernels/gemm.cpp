#include "maxgrad/core/kernels/gemm.h"

#include <cblas.h>

#include <algorithm>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/gemm_small_k.h"
#include "maxgrad/core/kernels/scratch.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/reference/gemm.h"

namespace mg::kernels {

namespace {
inline CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }
constexpr int64_t kMaxTasks = 8, kMinBlock = 64, kMinK = 256;  // gemm_parallel's cuts
constexpr int64_t kMaxSplitKC = 512 * 512;                     // C of a k-split: partials of this size at most

// Puts bias[j] in every row of C, so that a GEMM with beta 1 adds the product to it.
template <typename T> void fill_bias_rows(int64_t m, int64_t n, const T* bias, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) std::copy(bias, bias + n, c + i * ldc);
}

// C = alpha op(A) op(B) + beta C, or with a bias (beta 0): + bias[j] in every row.
void gemm_one(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, const float* bias, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (gemm_small_k_fits(ta, tb, m, n, k))
    return bias ? gemm_small_k_bias(ta, tb, m, n, k, alpha, a, lda, b, ldb, bias, c, ldc)
                : gemm_small_k(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (bias) fill_bias_rows(m, n, bias, c, ldc), beta = 1;  // this block only, just before the product reads it
  cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void gemm_one(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
              const double* b, int64_t ldb, double beta, const double* bias, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (bias) fill_bias_rows(m, n, bias, c, ldc), beta = 1;
  cblas_dgemm(CblasRowMajor, tr(ta), tr(tb), static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}
}  // namespace

template <typename T> void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                                const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (use_reference_kernels()) return reference::gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  gemm_one(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, nullptr, c, ldc);
}

namespace {
// How a product is cut into tasks. OpenBLAS packs all of op(B) for every call that takes a block
// of rows of C (all of op(A) for a block of columns), so thin blocks repeat that work: blocks are
// made as large as kMaxTasks tasks allow and never thinner than kMinBlock. When k is long next to
// C (a weight gradient: a sum over every row of a batch), k is cut instead, and the partial
// products are added up in their order afterwards.
// With a bias (beta 0), bias[j] is added to every row of C by whichever call computes the row.
template <typename T> void parallel(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                                    const T* b, int64_t ldb, T beta, const T* bias, T* c, int64_t ldc) {
  // Below ~1 MFLOP a single call is cheaper than any split.
  if (m * n * k < (1 << 20)) return gemm_one(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, bias, c, ldc);
  auto block_of = [](int64_t dim) {  // multiple of 16, at most kMaxTasks blocks
    const int64_t blocks = std::min(kMaxTasks, dim / kMinBlock);
    return ((dim + blocks - 1) / blocks + 15) / 16 * 16;
  };
  // A long k with a moderate C (a weight gradient: a sum over every row of a batch) is cut in k even
  // when C could be cut: every task that takes a block of C packs the whole of op(A) or op(B), a
  // slice of k per task packs each operand once in all.
  const bool long_k = k >= 2 * kMinK && k >= 8 * std::max(m, n) && m * n <= kMaxSplitKC;
  if (!long_k && std::max(m, n) >= 2 * kMinBlock) {
    if (m >= n) {  // split rows of C (and of op(A))
      parallel_for(m, block_of(m), [&](int64_t r0, int64_t r1) {
        const T* ap = ta ? a + r0 : a + r0 * lda;
        gemm_one(ta, tb, r1 - r0, n, k, alpha, ap, lda, b, ldb, beta, bias, c + r0 * ldc, ldc);
      });
    } else {  // split columns of C (and of op(B))
      parallel_for(n, block_of(n), [&](int64_t c0, int64_t c1) {
        const T* bp = tb ? b + c0 * ldb : b + c0;
        gemm_one(ta, tb, m, c1 - c0, k, alpha, a, lda, bp, ldb, beta, bias ? bias + c0 : nullptr, c + c0, ldc);
      });
    }
    return;
  }
  if (k < 2 * kMinK) return gemm_one(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, bias, c, ldc);
  // C (m, n) = beta C + sum over parts p of op(A)[:, K_p] op(B)[K_p, :]
  const int64_t parts = std::min(kMaxTasks, k / kMinK), kc = ((k + parts - 1) / parts + 63) / 64 * 64;
  const int64_t np = (k + kc - 1) / kc;
  Scratch<T> partial(np * m * n);  // every part is written whole (beta 0)
  parallel_for(np, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t k0 = p * kc, kk = std::min(k, k0 + kc) - k0;
      const T* ap = ta ? a + k0 * lda : a + k0;
      const T* bp = tb ? b + k0 : b + k0 * ldb;
      gemm_one(ta, tb, m, n, kk, alpha, ap, lda, bp, ldb, T(0), nullptr, partial.data() + p * m * n, n);
    }
  });
  parallel_for(m, std::max<int64_t>(1, 4096 / n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t j = 0; j < n; ++j) {
        T s = partial[r * n + j];
        for (int64_t p = 1; p < np; ++p) s += partial[(p * m + r) * n + j];
        // beta 0 ignores C, as BLAS does; a bias comes first, as in the calls above
        c[r * ldc + j] = bias ? bias[j] + s : beta == T(0) ? s : beta * c[r * ldc + j] + s;
      }
  });
}
}  // namespace

template <typename T> void gemm_parallel(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                                         int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (use_reference_kernels()) return reference::gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  parallel(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, static_cast<const T*>(nullptr), c, ldc);
}

template <typename T> void gemm_parallel_bias(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                                              int64_t lda, const T* b, int64_t ldb, const T* bias, T* c, int64_t ldc) {
  if (use_reference_kernels()) return reference::gemm_bias(ta, tb, m, n, k, alpha, a, lda, b, ldb, bias, c, ldc);
  parallel(ta, tb, m, n, k, alpha, a, lda, b, ldb, T(0), bias, c, ldc);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);
template void gemm_parallel_bias<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                                        const float*, int64_t, const float*, float*, int64_t);
template void gemm_parallel_bias<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                         const double*, int64_t, const double*, double*, int64_t);
template void gemm_parallel<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                   int64_t, float, float*, int64_t);
template void gemm_parallel<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                    const double*, int64_t, double, double*, int64_t);

}  // namespace mg::kernels
