#include "maxgrad/core/kernels/layer_norm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/lanes.h"
#include "maxgrad/core/kernels/simd.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/reference/layer_norm.h"

namespace mg::kernels {

namespace {
constexpr int64_t kLanes = 8;  // rows are short (32 to 512 values): one register of doubles

// ---- the forward on float rows of whole vectors, 8 rows at a time (AVX-512: kLanes doubles a vector) ----
// A short row's statistics are a chain: lanes added, the lanes combined one after another, a
// division, a square root; at C = 32 about 170 cycles, where the arithmetic is a fraction of that,
// and row by row the CPU overlapped little of one row's chain with the next. Here the lane sums of
// 8 rows are transposed so that one vector add combines lane l of all 8 rows at once: per row the
// same adds in the same order as the loops below, so the same bits, but 8 chains side by side. (The
// backward is not done this way: in a step its rows come from memory, which the chains then wait on
// anyway.)
using VD = Vec<double>;
constexpr bool kRowVectors = kVecLanes<double> == kLanes && kVecLanes<float> == 2 * kLanes;
constexpr int64_t kBlockRows = kLanes;

template <typename V> inline VD low_half(V v) {  // lanes 0-7 of a float vector, as doubles
  return __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), VD);
}
template <typename V> inline VD high_half(V v) {  // lanes 8-15
  return __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), VD);
}
// part[j] holds row j's lane sums; returns row j's total in lane j, the lanes added in order (as
// combine_lanes). part is overwritten.
inline VD combine_rows(VD* part) {
  vtranspose<double>(part);  // part[l] lane j: lane l of row j
  VD s = {};
  for (int64_t l = 0; l < kLanes; ++l) s += part[l];
  return s;
}

// Whether a LayerNorm takes the 8-row vector path: float, AVX-512, C a whole number of vectors, and
// (checked by the caller) both or neither of w and b. (The function below is a template so that
// other targets, where it would not compile, never instantiate it.)
template <typename T> constexpr bool kRows8 = (kRowVectors && std::is_same_v<T, float>);
inline bool rows8_fit(int64_t c) { return c % kVecLanes<float> == 0; }

template <typename T> void ln_forward_rows8(const T* x, int64_t c, double eps, const T* w, const T* b, T* y, T* mean,
                                            T* rstd, int64_t r0, int64_t r1) {
  using VF = Vec<T>;
  constexpr int64_t F = kVecLanes<T>;
  for (int64_t rb = r0; rb < r1; rb += kBlockRows) {
    const int64_t nb = std::min(kBlockRows, r1 - rb);
    const T* xb = x + rb * c;
    VD part[kBlockRows] = {};
    for (int64_t j = 0; j < nb; ++j)
      for (int64_t i = 0; i < c; i += F) {
        const VF v = vload(xb + j * c + i);
        part[j] += low_half(v), part[j] += high_half(v);  // values i..i+7 to lanes 0-7, then i+8..i+15
      }
    const VD m = combine_rows(part) / static_cast<double>(c);
    for (int64_t j = 0; j < kBlockRows; ++j) part[j] = VD{};
    for (int64_t j = 0; j < nb; ++j) {
      const double mj = m[j];
      for (int64_t i = 0; i < c; i += F) {
        const VF v = vload(xb + j * c + i);
        const VD d0 = low_half(v) - mj, d1 = high_half(v) - mj;
        part[j] += d0 * d0, part[j] += d1 * d1;
      }
    }
    const VD var = combine_rows(part) / static_cast<double>(c);
    for (int64_t j = 0; j < nb; ++j) {
      mean[rb + j] = static_cast<T>(m[j]);
      rstd[rb + j] = static_cast<T>(1 / std::sqrt(var[j] + eps));
    }
    for (int64_t j = 0; j < nb; ++j) {
      const T mt = mean[rb + j], rs = rstd[rb + j];
      for (int64_t i = 0; i < c; i += F) {
        const VF xh = (vload(xb + j * c + i) - mt) * rs;
        // w and b both given or both not (the caller's condition), each as the row loops below write it
        vstore(y + (rb + j) * c + i, w ? xh * vload(w + i) + vload(b + i) : xh + VF{});
      }
    }
  }
}

}  // namespace

template <typename T>
void ln_forward(const T* x, const LnGeom& g, double eps, const T* w, const T* b, T* y, T* mean, T* rstd) {
  if (use_reference_kernels()) return reference::layer_norm_forward(x, g, eps, w, b, y, mean, rstd);
  const int64_t c = g.c;
  if constexpr (kRows8<T>)
    if (rows8_fit(c) && (w == nullptr) == (b == nullptr))
      return parallel_for(g.rows, 64,
                          [&](int64_t r0, int64_t r1) { ln_forward_rows8(x, c, eps, w, b, y, mean, rstd, r0, r1); });
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
  if (use_reference_kernels()) return reference::layer_norm_backward(gy, x, g, mean, rstd, w, gx, dw, db);
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

#define MG_INSTANTIATE(T)                                                                       \
  template void ln_forward<T>(const T*, const LnGeom&, double, const T*, const T*, T*, T*, T*); \
  template void ln_backward<T>(const T*, const T*, const LnGeom&, const T*, const T*, const T*, T*, double*, double*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
