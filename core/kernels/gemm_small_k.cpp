#include "maxgrad/core/kernels/gemm_small_k.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "maxgrad/core/kernels/transpose.h"

namespace mg::kernels {

namespace {

// One SIMD register of floats, and the four things the kernel does with it (named apart from
// simd.h's vload/vstore, which work on a 64-byte vector whatever the target). The multiply-add is
// written out, so that it is one rounding with any compiler's contraction setting.
#if defined(__AVX512F__)
using Vec = __m512;
constexpr int64_t kLanes = 16, kMR = 6, kNV = 4;  // a 6 x 64 tile: 24 of the 32 registers accumulate
inline Vec ld(const float* p) { return _mm512_loadu_ps(p); }
inline void st(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec vset(float x) { return _mm512_set1_ps(x); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
constexpr int64_t kLanes = 8, kMR = 6, kNV = 2;  // 6 x 16: 12 of the 16 registers accumulate
inline Vec ld(const float* p) { return _mm256_loadu_ps(p); }
inline void st(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec vset(float x) { return _mm256_set1_ps(x); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
#else
typedef float Vec __attribute__((vector_size(16)));
typedef float VecU __attribute__((vector_size(16), aligned(4), may_alias));
constexpr int64_t kLanes = 4, kMR = 4, kNV = 2;
inline Vec ld(const float* p) { return *reinterpret_cast<const VecU*>(p); }
inline void st(float* p, Vec v) { *reinterpret_cast<VecU*>(p) = v; }
inline Vec vset(float x) { return Vec{} + x; }
inline Vec vfma(Vec a, Vec b, Vec c) { return a * b + c; }
#endif

// C[MR rows, NV vectors] = alpha * A[MR, k] B[k, NV vectors] + beta * D, A's (r, p) at a[r * ars + p * aps]
// (ars = lda, aps = 1 as stored; ars = 1, aps = lda transposed). The tile lives in registers for the
// whole of k; each step loads NV vectors of one row of B and broadcasts one value per row of A.
// B's row p is at b + p * ldb, or with ROWS at b + boff[p] (gemm_small_k_rows: an implicit GEMM).
// D is C itself (d = c, ldd = ldc), or a bias row added to every row of C (ldd = 0, beta = 1).
// pf, if not null, is another block of B's columns with B's row stride, to be asked of the memory
// system as this tile goes (small_k: the next chunk's). apf, if not null, is the next tile's rows of
// A as stored, asked for a 64-byte line per row every 16 steps of k: with k >= 64 the six rows are
// six streams a row apart, each read 4 bytes a step, which the hardware prefetcher does not keep
// ahead of (the first stage's fc2 forward, k 128: 35% faster with it, on a 1-thread Zen 4).
template <int64_t MR, int64_t NV, bool ROWS> void tile(int64_t k, float alpha, const float* a, int64_t ars, int64_t aps,
                                                       const float* b, int64_t ldb, const int64_t* boff, float beta,
                                                       const float* d, int64_t ldd, float* c, int64_t ldc,
                                                       const float* pf, const float* apf) {
  Vec acc[MR][NV];
#pragma GCC unroll 8
  for (int64_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int64_t v = 0; v < NV; ++v) acc[r][v] = vset(0.0f);
  for (int64_t p = 0; p < k; ++p) {
    if (pf)
#pragma GCC unroll 4
      for (int64_t v = 0; v < NV; ++v) __builtin_prefetch(pf + p * ldb + v * kLanes);
    if (apf && p % 16 == 0)  // a 64-byte line of each row
#pragma GCC unroll 8
      for (int64_t r = 0; r < MR; ++r) __builtin_prefetch(apf + r * ars + p);
    Vec bv[NV];
#pragma GCC unroll 4
    for (int64_t v = 0; v < NV; ++v) bv[v] = ld((ROWS ? b + boff[p] : b + p * ldb) + v * kLanes);
#pragma GCC unroll 8
    for (int64_t r = 0; r < MR; ++r) {
      const Vec av = vset(a[r * ars + p * aps]);
#pragma GCC unroll 4
      for (int64_t v = 0; v < NV; ++v) acc[r][v] = vfma(av, bv[v], acc[r][v]);
    }
  }
  const Vec va = vset(alpha), vb = vset(beta);
#pragma GCC unroll 8
  for (int64_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int64_t v = 0; v < NV; ++v) {
      // beta 0 ignores D (C may be uninitialised), as BLAS does
      const Vec ab = acc[r][v] * va;
      st(c + r * ldc + v * kLanes, beta == 0.0f ? ab : vfma(ld(d + r * ldd + v * kLanes), vb, ab));
    }
}

using TileFn = void (*)(int64_t, float, const float*, int64_t, int64_t, const float*, int64_t, const int64_t*, float,
                        const float*, int64_t, float*, int64_t, const float*, const float*);

template <bool ROWS, int64_t MR, int64_t... NV> constexpr auto row_of_tiles(std::integer_sequence<int64_t, NV...>) {
  return std::array<TileFn, sizeof...(NV)>{&tile<MR, NV + 1, ROWS>...};
}
template <bool ROWS, int64_t... MR> constexpr auto table_of_tiles(std::integer_sequence<int64_t, MR...>) {
  return std::array<std::array<TileFn, kNV>, sizeof...(MR)>{
      row_of_tiles<ROWS, MR + 1>(std::make_integer_sequence<int64_t, kNV>{})...};
}
// kTiles[ROWS][mr - 1][nv - 1]: every tile size the edges of C need, B by rows of ldb or by offsets
constexpr std::array kTiles = {table_of_tiles<false>(std::make_integer_sequence<int64_t, kMR>{}),
                               table_of_tiles<true>(std::make_integer_sequence<int64_t, kMR>{})};

}  // namespace

bool gemm_small_k_fits(bool, bool trans_b, int64_t m, int64_t n, int64_t k) {
  // The shapes where this kernel beat OpenBLAS on this project's products, measured one by one (the
  // figures are in the commits that set these bounds): a short k with one side <= 128 (the 1x1
  // convs and linears of the first stage); with k <= 32, sides up to 512; a longer k next to a side
  // <= 64 (the 3x3 stem conv and its gradients); and a long k next to a small C with B as stored (a
  // linear layer's weight gradient over a slice of the batch's rows, accumulated in registers over
  // blocks of kKBlock rows where OpenBLAS packs both operands). OpenBLAS stays as fast or faster when
  // both m and n are large, for k >= 256 next to a side of 128, and for a transposed B with k > 256
  // (the 1x1 convs' weight gradients: copying B costs more than packing saves).
  const int64_t side = std::min(m, n);
  const bool shape = (k <= kSmallK && side <= (k <= kTinyK ? 512 : 128)) ||
                     (k <= kLongK && side <= 64 && !(trans_b && k > 256)) ||
                     (k >= kLongK && std::max(m, n) <= 256 && !trans_b);
  return k >= 1 && shape && n >= kLanes && n % kLanes == 0;
}

namespace {
constexpr int64_t kKBlock = 128;  // a long k's blocks: B's rows of a column chunk stay in L1 (32 KB)

// C = alpha op(A) op(B) + beta D, with D = C (ldd = ldc) or a bias row (ldd = 0, beta 1)
// (boff: B's rows at b + boff[p], tb false)
void small_k(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
             const float* b, int64_t ldb, const int64_t* boff, float beta, const float* d, int64_t ldd, float* c,
             int64_t ldc) {
  if (k == 0) {  // C = beta D (beta 0: zeros, D ignored, as BLAS does)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * d[i * ldd + j];
    return;
  }
  // A transposed B (a linear layer's weight, stored (n, k)) next to few rows of A (batch-1 inference):
  // copying B the right way round moves n*k values for a product of m*n*k multiply-adds, as much time
  // as the product itself at m = 16. So C^T (n, m) = B (n, k) @ op(A)^T is computed instead, with B
  // read in place, and turned round into C: m*k + m*n values copied. Every value is the same sum in
  // the same order (x*w is w*x), alpha and then beta D applied as in the tile: the same bits.
  if (tb && !boff && k < kLongK && m % kLanes == 0 && m * (k + n) < n * k) {
    thread_local std::vector<float> ct_buf;  // alpha C^T (n, m)
    ct_buf.resize(static_cast<size_t>(n * m));
    const float* ct = ct_buf.data();
    small_k(false, !ta, n, m, k, alpha, b, ldb, a, lda, nullptr, 0.0f, ct_buf.data(), m, ct_buf.data(), m);
    if (beta == 0.0f) return transpose(ct, m, n, m, c, ldc);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = std::fma(d[i * ldd + j], beta, ct[j * m + i]);
    return;
  }
  thread_local std::vector<float> b_buf;
  const int64_t ars = ta ? 1 : lda, aps = ta ? lda : 1;  // A stored (k, m) when transposed: read in place
  if (tb) {                                              // B is stored (n, k): copy it to (k, n)
    b_buf.resize(static_cast<size_t>(k * n));
    transpose(b, ldb, n, k, b_buf.data(), n);
    b = b_buf.data();
    ldb = n;
  }
  if (k >= kLongK) {  // a long k in blocks: C = alpha A_0 B_0 + beta D, then C += alpha A_i B_i in order
    for (int64_t p0 = 0; p0 < k; p0 += kKBlock) {
      const int64_t kk = std::min(kKBlock, k - p0);
      const float* ap = a + p0 * aps;
      const float* bp = boff ? b : b + p0 * ldb;
      const int64_t* op = boff ? boff + p0 : nullptr;
      if (p0 == 0)
        small_k(ta, false, m, n, kk, alpha, ap, lda, bp, ldb, op, beta, d, ldd, c, ldc);
      else
        small_k(ta, false, m, n, kk, alpha, ap, lda, bp, ldb, op, 1.0f, c, ldc, c, ldc);
    }
    return;
  }
  // Columns in chunks whose rows of B (k x chunk) stay in cache while every row of A passes: 16 KB,
  // in L1, up to k = 64 on AVX-512; one tile wide (k x 256 bytes, in L2) beyond.
  // A 1x1 convolution's B is a sample's activation planes: k rows a whole plane apart (4 KB at
  // 32x32), so a chunk is k short pieces of k different pages, which the hardware prefetcher, working
  // within a page, does not fetch ahead: every row was a wait on memory. So the first row of tiles of
  // a chunk asks for the next chunk's rows as it goes. B as stored only (not the offsets of an
  // implicit GEMM).
  constexpr int64_t kNR = kNV * kLanes;
  const int64_t chunk = std::max<int64_t>(kNR, 4096 / k / kNR * kNR);
  for (int64_t j0 = 0; j0 < n; j0 += chunk) {
    const int64_t j1 = std::min(n, j0 + chunk), width = j1 - j0;
    for (int64_t i0 = 0; i0 < m; i0 += kMR) {
      const int64_t mr = std::min(kMR, m - i0);
      for (int64_t j = j0; j < j1; j += kNR) {
        const int64_t nv = std::min(kNR, j1 - j) / kLanes;
        const float* pf = i0 == 0 && !boff && j + width < n ? b + j + width : nullptr;  // the same tile, next chunk
        // the first tile of a row of tiles fetches the next row's A (the others read the same rows)
        const float* apf = j == j0 && aps == 1 && k >= 64 && i0 + kMR < m ? a + (i0 + kMR) * ars : nullptr;
        kTiles[boff != nullptr][static_cast<size_t>(mr - 1)][static_cast<size_t>(nv - 1)](
            k, alpha, a + i0 * ars, ars, aps, b + j, ldb, boff, beta, d + i0 * ldd + j, ldd, c + i0 * ldc + j, ldc, pf,
            apf);
      }
    }
  }
}
}  // namespace

void gemm_small_k(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  small_k(ta, tb, m, n, k, alpha, a, lda, b, ldb, nullptr, beta, c, ldc, c, ldc);
}

void gemm_small_k_bias(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                       const float* b, int64_t ldb, const float* bias, float* c, int64_t ldc) {
  small_k(ta, tb, m, n, k, alpha, a, lda, b, ldb, nullptr, 1.0f, bias, 0, c, ldc);
}

void gemm_small_k_rows(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                       const int64_t* b_offsets, float* c, int64_t ldc) {
  small_k(false, false, m, n, k, 1.0f, a, lda, b, 0, b_offsets, 0.0f, c, ldc, c, ldc);
}

}  // namespace mg::kernels
