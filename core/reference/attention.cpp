#include "maxgrad/core/reference/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace mg::reference {

template <typename T> void multi_head_attention_forward(const T* qkv, const T* bias, int64_t groups, const AttnGeom& g,
                                                        double scale, T* out, T* probs) {
  const int64_t n = g.n, hd = g.hd, c = g.heads * hd;
  std::vector<double> s(static_cast<size_t>(n));  // one row of scores, then of P
  for (int64_t gi = 0; gi < groups; ++gi)
    for (int64_t h = 0; h < g.heads; ++h) {
      // head h of group gi: q(i, d), k(j, d), v(j, d) in qkv's rows, o(i, d) in out's, P(i, j), bias(i, j)
      const T* q = qkv + gi * n * 3 * c + h * hd;
      const T* k = q + c;
      const T* v = q + 2 * c;
      T* o = out + gi * n * c + h * hd;
      T* p = probs + (gi * g.heads + h) * n * n;
      const T* b = bias + h * n * n;
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < n; ++j) {  // S(i, j) = q_i . k_j * scale + bias(i, j)
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(q[i * 3 * c + d]) * k[j * 3 * c + d];
          s[j] = dot * scale + b[i * n + j];
        }
        double mx = s[0], sum = 0;  // softmax: max subtracted, exp, divided by the sum
        for (int64_t j = 1; j < n; ++j) mx = std::max(mx, s[j]);
        for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int64_t j = 0; j < n; ++j) p[i * n + j] = static_cast<T>(s[j] /= sum);
        for (int64_t d = 0; d < hd; ++d) {  // O(i, d) = sum_j P(i, j) v(j, d)
          double acc = 0;
          for (int64_t j = 0; j < n; ++j) acc += s[j] * v[j * 3 * c + d];
          o[i * c + d] = static_cast<T>(acc);
        }
      }
    }
}

template <typename T> void multi_head_attention_backward(const T* qkv, const T* probs, const T* gout, int64_t groups,
                                                         const AttnGeom& g, double scale, T* gqkv, T* gbias) {
  const int64_t n = g.n, hd = g.hd, c = g.heads * hd;
  std::vector<double> ds(static_cast<size_t>(n * n));                 // dP, then dS, of one head
  std::vector<double> gb(static_cast<size_t>(g.heads * n * n), 0.0);  // gbias, summed over the groups
  for (int64_t gi = 0; gi < groups; ++gi)
    for (int64_t h = 0; h < g.heads; ++h) {
      const T* q = qkv + gi * n * 3 * c + h * hd;
      const T* k = q + c;
      const T* v = q + 2 * c;
      const T* go = gout + gi * n * c + h * hd;  // dO(i, d) = go[i * c + d]
      const T* p = probs + (gi * g.heads + h) * n * n;
      T* dq = gqkv + gi * n * 3 * c + h * hd;
      T* dk = dq + c;
      T* dv = dq + 2 * c;
      for (int64_t j = 0; j < n; ++j)  // dV(j, d) = sum_i P(i, j) dO(i, d)
        for (int64_t d = 0; d < hd; ++d) {
          double acc = 0;
          for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(p[i * n + j]) * go[i * c + d];
          dv[j * 3 * c + d] = static_cast<T>(acc);
        }
      for (int64_t i = 0; i < n; ++i)  // dP(i, j) = sum_d dO(i, d) v(j, d)
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0;
          for (int64_t d = 0; d < hd; ++d) acc += static_cast<double>(go[i * c + d]) * v[j * 3 * c + d];
          ds[i * n + j] = acc;
        }
      for (int64_t i = 0; i < n; ++i) {  // dS(i, j) = P(i, j) (dP(i, j) - sum_l dP(i, l) P(i, l))
        double dot = 0;
        for (int64_t l = 0; l < n; ++l) dot += ds[i * n + l] * p[i * n + l];
        for (int64_t j = 0; j < n; ++j) {
          ds[i * n + j] = p[i * n + j] * (ds[i * n + j] - dot);
          gb[(h * n + i) * n + j] += ds[i * n + j];
        }
      }
      for (int64_t i = 0; i < n; ++i)  // dq(i, d) = sum_j dS(i, j) k(j, d) * scale
        for (int64_t d = 0; d < hd; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < n; ++j) acc += ds[i * n + j] * k[j * 3 * c + d];
          dq[i * 3 * c + d] = static_cast<T>(acc * scale);
        }
      for (int64_t j = 0; j < n; ++j)  // dk(j, d) = sum_i dS(i, j) q(i, d) * scale
        for (int64_t d = 0; d < hd; ++d) {
          double acc = 0;
          for (int64_t i = 0; i < n; ++i) acc += ds[i * n + j] * q[i * 3 * c + d];
          dk[j * 3 * c + d] = static_cast<T>(acc * scale);
        }
    }
  for (size_t i = 0; i < gb.size(); ++i) gbias[i] = static_cast<T>(gb[i]);
}

#define MG_INSTANTIATE(T)                                                                                            \
  template void multi_head_attention_forward<T>(const T*, const T*, int64_t, const AttnGeom&, double, T*, T*);       \
  template void multi_head_attention_backward<T>(const T*, const T*, const T*, int64_t, const AttnGeom&, double, T*, \
                                                 T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::reference
