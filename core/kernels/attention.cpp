#include "maxgrad/core/kernels/attention.h"

#include <algorithm>
#include <vector>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/fast_math.h"
#include "maxgrad/core/kernels/simd.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/reference/attention.h"

namespace mg::kernels {

namespace {

// C (m x n, row stride ldc) = A B, A (m x k) and B (k x n) row-major with row strides lda and ldb.
// Each output row is built in a register-sized block of W columns (one Vec, see simd.h), four rows
// at a time: four independent chains of multiply-adds, and C is stored once instead of once per p.
// Each element is summed over p in order, as the plain triple loop would.
// (A used to be any strided layout, transposed views included. GCC 12 at -O3 specialised the
// function for a column-read A and vectorised the loads past the end of it: an out-of-bounds read
// that crashed when P ended at a page boundary. The callers now copy A transposed instead.)
template <typename T>
void small_gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc) {
  using V = Vec<T>;
  constexpr int64_t W = kVecLanes<T>;
  for (int64_t j0 = 0; j0 < n; j0 += W) {
    const int64_t w = std::min(W, n - j0);
    int64_t i = 0;
    if (w == W) {
      for (; i + 4 <= m; i += 4) {
        V c0 = {}, c1 = {}, c2 = {}, c3 = {};
        const T* ar = a + i * lda;
        for (int64_t p = 0; p < k; ++p) {
          const V br = vload(b + p * ldb + j0);
          c0 += ar[p] * br;
          c1 += ar[lda + p] * br;
          c2 += ar[2 * lda + p] * br;
          c3 += ar[3 * lda + p] * br;
        }
        vstore(c + i * ldc + j0, c0);
        vstore(c + (i + 1) * ldc + j0, c1);
        vstore(c + (i + 2) * ldc + j0, c2);
        vstore(c + (i + 3) * ldc + j0, c3);
      }
      for (; i < m; ++i) {  // leftover rows
        V acc = {};
        for (int64_t p = 0; p < k; ++p) acc += a[i * lda + p] * vload(b + p * ldb + j0);
        vstore(c + i * ldc + j0, acc);
      }
      continue;
    }
    for (; i < m; ++i) {  // a last block of columns narrower than W
      T acc[W] = {};
      for (int64_t p = 0; p < k; ++p) {
        const T av = a[i * lda + p];
        const T* br = b + p * ldb + j0;
        for (int64_t l = 0; l < w; ++l) acc[l] += av * br[l];
      }
      std::copy(acc, acc + w, c + i * ldc + j0);
    }
  }
}

// Groups per task: about 2K scores, so a task is worth scheduling; fixed by the sizes (the
// bias gradient is summed per task, then over the tasks in order).
int64_t groups_per_task(const AttnGeom& g) {
  return std::max<int64_t>(1, 2048 / std::max<int64_t>(g.heads * g.n * g.n, 1));
}

}  // namespace

int64_t attention_scratch_size(const AttnGeom& g) { return 2 * g.n * g.hd + 2 * g.n * g.n; }

template <typename T>
void attention_forward(const T* qkv, const T* bias, const AttnGeom& g, T scale, T* out, T* probs, T* scratch) {
  const int64_t n = g.n, hd = g.hd, c = g.heads * hd, row = 3 * c;
  T* kt = scratch;  // (hd, n): the head's keys, scaled, transposed
  for (int64_t h = 0; h < g.heads; ++h) {
    const T* q = qkv + h * hd;
    const T* k = qkv + c + h * hd;
    const T* v = qkv + 2 * c + h * hd;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < hd; ++d) kt[d * n + j] = k[j * row + d] * scale;  // rounded as torchvision's k * scale
    T* p = probs + h * n * n;
    small_gemm<T>(n, n, hd, q, row, kt, n, p, n);  // S = q (k * scale)^T
    const T* b = bias + h * n * n;
    for (int64_t i = 0; i < n; ++i) {
      T* s = p + i * n;
      for (int64_t j = 0; j < n; ++j) s[j] += b[i * n + j];
      // softmax of the row, as core/ops/softmax.cpp: max subtracted, exp, divided by the sum
      T m = s[0];
      for (int64_t j = 1; j < n; ++j) m = std::max(m, s[j]);
      T sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += (s[j] = vec_exp(s[j] - m));
      for (int64_t j = 0; j < n; ++j) s[j] /= sum;
    }
    small_gemm<T>(n, hd, n, p, n, v, row, out + h * hd, c);  // O = P v
  }
}

template <typename T> void attention_backward(const T* qkv, const T* probs, const T* gout, const AttnGeom& g, T scale,
                                              T* gqkv, T* gbias, T* scratch) {
  const int64_t n = g.n, hd = g.hd, c = g.heads * hd, row = 3 * c;
  T* vt = scratch;           // (hd, n): the head's values, transposed
  T* ks = scratch + hd * n;  // (n, hd): the head's keys, scaled
  T* ds = ks + n * hd;       // (n, n): dP, then dS
  T* tr = ds + n * n;        // (n, n): P^T, then dS^T
  for (int64_t h = 0; h < g.heads; ++h) {
    const T* q = qkv + h * hd;
    const T* k = qkv + c + h * hd;
    const T* v = qkv + 2 * c + h * hd;
    const T* go = gout + h * hd;
    const T* p = probs + h * n * n;
    T* dq = gqkv + h * hd;
    T* dk = gqkv + c + h * hd;
    T* dv = gqkv + 2 * c + h * hd;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < hd; ++d) {
        vt[d * n + j] = v[j * row + d];
        ks[j * hd + d] = k[j * row + d] * scale;
      }
    small_gemm<T>(n, n, hd, go, c, vt, n, ds, n);  // dP = dO v^T
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) tr[j * n + i] = p[i * n + j];
    small_gemm<T>(n, hd, n, tr, n, go, c, dv, row);  // dV = P^T dO
    // dS = P * (dP - rowsum(dP * P)), the softmax backward; the bias gets dS as it is
    T* gb = gbias + h * n * n;
    for (int64_t i = 0; i < n; ++i) {
      T* r = ds + i * n;
      const T* pr = p + i * n;
      T s = 0;
      for (int64_t j = 0; j < n; ++j) s += r[j] * pr[j];
      for (int64_t j = 0; j < n; ++j) r[j] = pr[j] * (r[j] - s);
      for (int64_t j = 0; j < n; ++j) gb[i * n + j] += r[j];
    }
    small_gemm<T>(n, hd, n, ds, n, ks, hd, dq, row);  // dq = dS (k * scale)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) tr[j * n + i] = ds[i * n + j];
    small_gemm<T>(n, hd, n, tr, n, q, row, dk, row);  // dk = (dS^T q) * scale:
    for (int64_t j = 0; j < n; ++j)                   // the gradient of k * scale, times scale
      for (int64_t d = 0; d < hd; ++d) dk[j * row + d] *= scale;
  }
}

template <typename T> void multi_head_attention_forward(const T* qkv, const T* bias, int64_t groups, const AttnGeom& g,
                                                        double scale, T* out, T* probs) {
  if (use_reference_kernels()) return reference::multi_head_attention_forward(qkv, bias, groups, g, scale, out, probs);
  const int64_t n = g.n, c = g.heads * g.hd;
  parallel_for(groups, groups_per_task(g), [&](int64_t g0, int64_t g1) {
    std::vector<T> scratch(static_cast<size_t>(attention_scratch_size(g)));
    for (int64_t gi = g0; gi < g1; ++gi)
      attention_forward<T>(qkv + gi * n * 3 * c, bias, g, static_cast<T>(scale), out + gi * n * c,
                           probs + gi * g.heads * n * n, scratch.data());
  });
}

template <typename T> void multi_head_attention_backward(const T* qkv, const T* probs, const T* gout, int64_t groups,
                                                         const AttnGeom& g, double scale, T* gqkv, T* gbias) {
  if (use_reference_kernels())
    return reference::multi_head_attention_backward(qkv, probs, gout, groups, g, scale, gqkv, gbias);
  const int64_t n = g.n, c = g.heads * g.hd, nb = g.heads * n * n;
  const int64_t grain = groups_per_task(g), parts = (groups + grain - 1) / grain;
  std::vector<T> partial(static_cast<size_t>(parts * nb), T(0));  // the bias gradient of each task
  parallel_for(groups, grain, [&](int64_t g0, int64_t g1) {
    std::vector<T> scratch(static_cast<size_t>(attention_scratch_size(g)));
    T* gb = partial.data() + (g0 / grain) * nb;
    for (int64_t gi = g0; gi < g1; ++gi)
      attention_backward<T>(qkv + gi * n * 3 * c, probs + gi * nb, gout + gi * n * c, g, static_cast<T>(scale),
                            gqkv + gi * n * 3 * c, gb, scratch.data());
  });
  for (int64_t i = 0; i < nb; ++i) {
    T s = 0;
    for (int64_t p = 0; p < parts; ++p) s += partial[p * nb + i];
    gbias[i] = s;
  }
}

#define MG_INSTANTIATE(T)                                                                                            \
  template void attention_forward<T>(const T*, const T*, const AttnGeom&, T, T*, T*, T*);                            \
  template void attention_backward<T>(const T*, const T*, const T*, const AttnGeom&, T, T*, T*, T*);                 \
  template void multi_head_attention_forward<T>(const T*, const T*, int64_t, const AttnGeom&, double, T*, T*);       \
  template void multi_head_attention_backward<T>(const T*, const T*, const T*, int64_t, const AttnGeom&, double, T*, \
                                                 T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
