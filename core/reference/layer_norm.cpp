#include "maxgrad/core/reference/layer_norm.h"

#include <cmath>
#include <vector>

namespace mg::reference {

template <typename T>
void layer_norm_forward(const T* x, const LnGeom& g, double eps, const T* w, const T* b, T* y, T* mean, T* rstd) {
  const int64_t c = g.c;
  for (int64_t r = 0; r < g.rows; ++r) {
    const T* xr = x + r * c;
    double m = 0, v = 0;
    for (int64_t i = 0; i < c; ++i) m += xr[i];
    m /= static_cast<double>(c);
    for (int64_t i = 0; i < c; ++i) v += (xr[i] - m) * (xr[i] - m);
    v /= static_cast<double>(c);  // biased: divided by c, not c - 1
    const T rs = static_cast<T>(1 / std::sqrt(v + eps)), mt = static_cast<T>(m);
    rstd[r] = rs, mean[r] = mt;
    for (int64_t i = 0; i < c; ++i) {
      const T xh = (xr[i] - mt) * rs;
      y[r * c + i] = (w ? xh * w[i] : xh) + (b ? b[i] : T(0));
    }
  }
}

template <typename T> void layer_norm_backward(const T* gy, const T* x, const LnGeom& g, const T* mean, const T* rstd,
                                               const T* w, T* gx, double* dw, double* db) {
  const int64_t c = g.c;
  std::vector<double> sw(static_cast<size_t>(c), 0.0), sb(static_cast<size_t>(c), 0.0);
  for (int64_t r = 0; r < g.rows; ++r) {
    // the row's sums of dxhat and dxhat * xhat, and its share of dw and db
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < c; ++i) {
      const T xh = (x[r * c + i] - mean[r]) * rstd[r], dxh = w ? gy[r * c + i] * w[i] : gy[r * c + i];
      s1 += dxh, s2 += dxh * xh;
      sw[i] += gy[r * c + i] * xh, sb[i] += gy[r * c + i];
    }
    const T m1 = static_cast<T>(s1 / static_cast<double>(c)), m2 = static_cast<T>(s2 / static_cast<double>(c));
    for (int64_t i = 0; i < c; ++i) {
      const T xh = (x[r * c + i] - mean[r]) * rstd[r], dxh = w ? gy[r * c + i] * w[i] : gy[r * c + i];
      gx[r * c + i] = rstd[r] * (dxh - m1 - xh * m2);
    }
  }
  for (int64_t i = 0; i < c; ++i) {
    if (dw) dw[i] = sw[i];
    if (db) db[i] = sb[i];
  }
}

#define MG_INSTANTIATE(T)                                                                                            \
  template void layer_norm_forward<T>(const T*, const LnGeom&, double, const T*, const T*, T*, T*, T*);              \
  template void layer_norm_backward<T>(const T*, const T*, const LnGeom&, const T*, const T*, const T*, T*, double*, \
                                       double*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::reference
