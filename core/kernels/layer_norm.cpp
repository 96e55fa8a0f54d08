#include "core/kernels/layer_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/kernels/lanes.h"
#include "core/parallel.h"

namespace mg::kernels {

namespace {
constexpr int64_t kLanes = 8;  // rows are short (32 to 512 values): one register of doubles
}

template <typename T>
void ln_forward(const T* x, const LnGeom& g, double eps, const T* w, const T* b, T* y, T* mean, T* rstd) {
  const int64_t c = g.c;
  parallel_for(g.rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * c;
      double part[kLanes] = {};
      add_lanes<kLanes>(c, part, [&](int64_t i) { return static_cast<double>(xr[i]); });
      const double m = combine_lanes<kLanes>(part) / static_cast<double>(c);
      double sq[kLanes] = {};
      add_lanes<kLanes>(c, sq, [&](int64_t i) {
        const double d = static_cast<double>(xr[i]) - m;
        return d * d;
      });
      const double v = combine_lanes<kLanes>(sq) / static_cast<double>(c);
      const T rs = static_cast<T>(1 / std::sqrt(v + eps)), mt = static_cast<T>(m);
      rstd[r] = rs, mean[r] = mt;
      T* __restrict__ yr = y + r * c;  // may not overlap w or b: lets the loops below vectorise
      if (w && b)
        for (int64_t i = 0; i < c; ++i) yr[i] = (xr[i] - mt) * rs * w[i] + b[i];
      else
        for (int64_t i = 0; i < c; ++i) {
          const T xh = (xr[i] - mt) * rs;
          yr[i] = (w ? xh * w[i] : xh) + (b ? b[i] : T(0));
        }
    }
  });
}

template <typename T> void ln_backward(const T* gy, const T* x, const LnGeom& g, const T* mean, const T* rstd,
                                       const T* w, T* gx, double* dw, double* db) {
  const int64_t c = g.c, parts = (g.rows + kLnRowsPerPart - 1) / kLnRowsPerPart;
  std::vector<double> pdw(static_cast<size_t>(parts * c), 0.0), pdb(static_cast<size_t>(parts * c), 0.0);
  parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
    std::vector<T> xh_buf(static_cast<size_t>(c)), dxh_buf(static_cast<size_t>(c));
    // __restrict__ and one array per loop: with pw and pb (both double*) written in one loop the
    // compiler had to assume they overlap and left the loop scalar.
    T* __restrict__ xh = xh_buf.data();
    T* __restrict__ dxh = dxh_buf.data();
    for (int64_t p = p0; p < p1; ++p) {
      double* __restrict__ pw = pdw.data() + p * c;
      double* __restrict__ pb = pdb.data() + p * c;
      for (int64_t r = p * kLnRowsPerPart; r < std::min(g.rows, (p + 1) * kLnRowsPerPart); ++r) {
        const T *xr = x + r * c, *gr = gy + r * c;
        const T m = mean[r], rs = rstd[r];
        for (int64_t i = 0; i < c; ++i) xh[i] = (xr[i] - m) * rs;
        if (w)
          for (int64_t i = 0; i < c; ++i) dxh[i] = gr[i] * w[i];
        else
          for (int64_t i = 0; i < c; ++i) dxh[i] = gr[i];
        for (int64_t i = 0; i < c; ++i) pw[i] += gr[i] * xh[i];
        for (int64_t i = 0; i < c; ++i) pb[i] += gr[i];
        double s1[kLanes] = {}, s2[kLanes] = {};  // sums of dxhat and dxhat * xhat
        add_lanes<kLanes>(c, s1, [&](int64_t i) { return static_cast<double>(dxh[i]); });
        add_lanes<kLanes>(c, s2, [&](int64_t i) { return static_cast<double>(dxh[i] * xh[i]); });
        const T m1 = static_cast<T>(combine_lanes<kLanes>(s1) / static_cast<double>(c));
        const T m2 = static_cast<T>(combine_lanes<kLanes>(s2) / static_cast<double>(c));
        T* gxr = gx + r * c;
        for (int64_t i = 0; i < c; ++i) gxr[i] = rs * (dxh[i] - m1 - xh[i] * m2);
      }
    }
  });
  for (int64_t i = 0; i < c; ++i) {  // the blocks' partial sums, in order
    double sw = 0, sb = 0;
    for (int64_t p = 0; p < parts; ++p) sw += pdw[p * c + i], sb += pdb[p * c + i];
    if (dw) dw[i] = sw;
    if (db) db[i] = sb;
  }
}

// ---- references: one value after another, one row after another ----

template <typename T>
void ln_forward_reference(const T* x, const LnGeom& g, double eps, const T* w, const T* b, T* y, T* mean, T* rstd) {
  const int64_t c = g.c;
  for (int64_t r = 0; r < g.rows; ++r) {
    const T* xr = x + r * c;
    double m = 0, v = 0;
    for (int64_t i = 0; i < c; ++i) m += xr[i];
    m /= static_cast<double>(c);
    for (int64_t i = 0; i < c; ++i) v += (xr[i] - m) * (xr[i] - m);
    v /= static_cast<double>(c);
    const T rs = static_cast<T>(1 / std::sqrt(v + eps)), mt = static_cast<T>(m);
    rstd[r] = rs, mean[r] = mt;
    for (int64_t i = 0; i < c; ++i) {
      const T xh = (xr[i] - mt) * rs;
      y[r * c + i] = (w ? xh * w[i] : xh) + (b ? b[i] : T(0));
    }
  }
}

template <typename T> void ln_backward_reference(const T* gy, const T* x, const LnGeom& g, const T* mean, const T* rstd,
                                                 const T* w, T* gx, double* dw, double* db) {
  const int64_t c = g.c;
  std::vector<double> sw(static_cast<size_t>(c), 0.0), sb(static_cast<size_t>(c), 0.0);
  for (int64_t r = 0; r < g.rows; ++r) {
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

#define MG_INSTANTIATE(T)                                                                                              \
  template void ln_forward<T>(const T*, const LnGeom&, double, const T*, const T*, T*, T*, T*);                        \
  template void ln_backward<T>(const T*, const T*, const LnGeom&, const T*, const T*, const T*, T*, double*, double*); \
  template void ln_forward_reference<T>(const T*, const LnGeom&, double, const T*, const T*, T*, T*, T*);              \
  template void ln_backward_reference<T>(const T*, const T*, const LnGeom&, const T*, const T*, const T*, T*, double*, \
                                         double*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
