#include "core/kernels/attention.h"

#include <algorithm>

#include "core/kernels/fast_math.h"

namespace mg::kernels {

int64_t attention_scratch_size(const AttnGeom& g) { return 2 * g.n * g.hd + g.n * g.n; }

template <typename T>
void attention_forward(const T* qkv, const T* bias, const AttnGeom& g, T scale, T* out, T* probs, T* scratch) {
  const int64_t n = g.n, hd = g.hd, c = g.heads * hd, row = 3 * c;
  T* __restrict__ kt = scratch;  // (hd, n): the head's keys, scaled, transposed
  for (int64_t h = 0; h < g.heads; ++h) {
    const T* q = qkv + h * hd;
    const T* k = qkv + c + h * hd;
    const T* v = qkv + 2 * c + h * hd;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < hd; ++d) kt[d * n + j] = k[j * row + d] * scale;  // rounded as torchvision's k * scale
    T* p = probs + h * n * n;
    const T* b = bias + h * n * n;
    for (int64_t i = 0; i < n; ++i) {
      T* __restrict__ s = p + i * n;
      std::fill(s, s + n, T(0));
      for (int64_t d = 0; d < hd; ++d) {
        const T a = q[i * row + d];
        for (int64_t j = 0; j < n; ++j) s[j] += a * kt[d * n + j];
      }
      for (int64_t j = 0; j < n; ++j) s[j] += b[i * n + j];
      // softmax of the row, as core/ops/softmax.cpp: max subtracted, exp, divided by the sum
      T m = s[0];
      for (int64_t j = 1; j < n; ++j) m = std::max(m, s[j]);
      T sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += (s[j] = exp_(s[j] - m));
      for (int64_t j = 0; j < n; ++j) s[j] /= sum;
    }
    for (int64_t i = 0; i < n; ++i) {  // O = P v, row by row
      T* __restrict__ o = out + i * c + h * hd;
      std::fill(o, o + hd, T(0));
      for (int64_t j = 0; j < n; ++j) {
        const T a = p[i * n + j];
        const T* vr = v + j * row;
        for (int64_t d = 0; d < hd; ++d) o[d] += a * vr[d];
      }
    }
  }
}

template <typename T>
void attention_backward(const T* qkv, const T* probs, const T* gout, const AttnGeom& g, T scale, T* gqkv, T* gbias,
                        T* scratch) {
  const int64_t n = g.n, hd = g.hd, c = g.heads * hd, row = 3 * c;
  T* __restrict__ vt = scratch;           // (hd, n): the head's values, transposed
  T* __restrict__ ks = scratch + hd * n;  // (n, hd): the head's keys, scaled
  T* __restrict__ ds = ks + n * hd;       // (n, n): dP, then dS
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
    // dP = dO v^T
    for (int64_t i = 0; i < n; ++i) {
      T* __restrict__ r = ds + i * n;
      std::fill(r, r + n, T(0));
      for (int64_t d = 0; d < hd; ++d) {
        const T a = go[i * c + d];
        for (int64_t j = 0; j < n; ++j) r[j] += a * vt[d * n + j];
      }
    }
    // dV = P^T dO: row j gathers P[i][j] dO[i] over i
    for (int64_t j = 0; j < n; ++j) std::fill(dv + j * row, dv + j * row + hd, T(0));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const T a = p[i * n + j];
        T* __restrict__ r = dv + j * row;
        for (int64_t d = 0; d < hd; ++d) r[d] += a * go[i * c + d];
      }
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
    // dq = dS (k * scale)
    for (int64_t i = 0; i < n; ++i) {
      T* __restrict__ r = dq + i * row;
      std::fill(r, r + hd, T(0));
      for (int64_t j = 0; j < n; ++j) {
        const T a = ds[i * n + j];
        for (int64_t d = 0; d < hd; ++d) r[d] += a * ks[j * hd + d];
      }
    }
    // dk = (dS^T q) * scale: the gradient of k * scale, times scale
    for (int64_t j = 0; j < n; ++j) std::fill(dk + j * row, dk + j * row + hd, T(0));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const T a = ds[i * n + j];
        T* __restrict__ r = dk + j * row;
        for (int64_t d = 0; d < hd; ++d) r[d] += a * q[i * row + d];
      }
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < hd; ++d) dk[j * row + d] *= scale;
  }
}

#define MG_INSTANTIATE(T)                                                                            \
  template void attention_forward<T>(const T*, const T*, const AttnGeom&, T, T*, T*, T*);           \
  template void attention_backward<T>(const T*, const T*, const T*, const AttnGeom&, T, T*, T*, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
