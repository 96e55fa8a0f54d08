#include "maxgrad/core/kernels/pool.h"

#include <algorithm>
#include <vector>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/simd.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/reference/pool.h"

namespace mg::kernels {

AxisWindows::AxisWindows(int64_t out, int64_t in, const PoolGeom& g) : div(out), first(g.k), last(g.k) {
  for (int64_t i = 0; i < out; ++i) {
    const int64_t a = i * g.s - g.p, b = std::min(a + g.k, in + g.p);  // inside the padded input
    div[i] = g.include_pad ? b - a : std::min(b, in) - std::max<int64_t>(a, 0);
  }
  for (int64_t t = 0; t < g.k; ++t) {  // 0 <= o * s - p + t < in
    first[t] = std::min(out, std::max<int64_t>(0, (g.p - t + g.s - 1) / g.s));
    const int64_t reach = in - 1 + g.p - t;  // o * s at most this
    last[t] = reach < 0 ? first[t] : std::max(first[t], std::min(out, reach / g.s + 1));
  }
}

// ---- the general passes: one tap at a time ----

template <typename T> void pool_columns(const T* x, const PoolGeom& g, const AxisWindows& cols, T* hs) {
  std::fill(hs, hs + g.h * g.wo, T(0));
  for (int64_t ih = 0; ih < g.h; ++ih)
    for (int64_t t = 0; t < g.k; ++t) {
      const T* xr = x + ih * g.w + t - g.p;
      T* hr = hs + ih * g.wo;
      for (int64_t ow = cols.first[t]; ow < cols.last[t]; ++ow) hr[ow] += xr[ow * g.s];
    }
}

template <typename T> void pool_rows(const T* hs, const PoolGeom& g, const AxisWindows& rows, T* y) {
  std::fill(y, y + g.ho * g.wo, T(0));
  for (int64_t t = 0; t < g.k; ++t)
    for (int64_t oh = rows.first[t]; oh < rows.last[t]; ++oh) {
      const T* hr = hs + (oh * g.s - g.p + t) * g.wo;
      T* yr = y + oh * g.wo;
      for (int64_t ow = 0; ow < g.wo; ++ow) yr[ow] += hr[ow];
    }
}

template <typename T> void pool_rows_backward(const T* gd, const PoolGeom& g, const AxisWindows& rows, T* vs) {
  std::fill(vs, vs + g.h * g.wo, T(0));
  for (int64_t t = 0; t < g.k; ++t)
    for (int64_t oh = rows.first[t]; oh < rows.last[t]; ++oh) {
      T* vr = vs + (oh * g.s - g.p + t) * g.wo;
      const T* gr = gd + oh * g.wo;
      for (int64_t ow = 0; ow < g.wo; ++ow) vr[ow] += gr[ow];
    }
}

template <typename T> void pool_columns_backward(const T* vs, const PoolGeom& g, const AxisWindows& cols, T* gx) {
  std::fill(gx, gx + g.h * g.w, T(0));
  for (int64_t ih = 0; ih < g.h; ++ih)
    for (int64_t t = 0; t < g.k; ++t) {
      T* xr = gx + ih * g.w + t - g.p;
      const T* vr = vs + ih * g.wo;
      for (int64_t ow = cols.first[t]; ow < cols.last[t]; ++ow) xr[ow * g.s] += vr[ow];
    }
}

// ---- 3x3 windows, stride 2, padding 1: whole vectors ----
//
// Column j of hs sums x[2j-1], x[2j], x[2j+1] of its row: the odd values one lane up, the even
// values and the odd values, each a vector after a deinterleave. Row r of y sums rows 2r-1, 2r, 2r+1
// of hs: with rows shorter than a vector, the even and odd rows are deinterleaved in blocks of wo
// lanes. Every sum starts from 0 and adds the taps in the general passes' order (0, 1, 2), and a
// missing tap (padding) adds 0 to 0 first: the same bits.

namespace {

template <int64_t W, typename T> void rows_3s2_short(const T* hs, const PoolGeom& g, T* y) {
  using V = Vec<T>;
  constexpr int64_t N = kVecLanes<T>;
  V prev_b{};                                     // zero above the first row: padding
  for (int64_t q0 = 0; q0 < g.ho * W; q0 += N) {  // N / W output rows from 2N / W rows of hs
    V a, b;                                       // rows 2r and 2r + 1 of hs, for the output rows r here
    vsplit_blocks<W>(vload(hs + 2 * q0), vload(hs + 2 * q0 + N), a, b);
    vstore(y + q0, ((V{} + vshift_up<W>(prev_b, b)) + a) + b);  // row 2r - 1 is the row above's b
    prev_b = b;
  }
}

template <int64_t W, typename T> void rows_backward_3s2_short(const T* gd, const PoolGeom& g, T* vs) {
  using V = Vec<T>;
  constexpr int64_t N = kVecLanes<T>;
  const int64_t count = g.ho * W;
  for (int64_t q0 = 0; q0 < count; q0 += N) {
    const V d = vload(gd + q0), next = q0 + N < count ? vload(gd + q0 + N) : V{};  // zero below the last row
    V h0, h1;  // row 2r gets gd row r; row 2r + 1 gets gd rows r + 1 (tap 0) and r (tap 2)
    vjoin_blocks<W>(V{} + d, (V{} + vshift_down<W>(d, next)) + d, h0, h1);
    vstore(vs + 2 * q0, h0);
    vstore(vs + 2 * q0 + N, h1);
  }
}

}  // namespace

template <typename T> bool pool_fits_3s2(const PoolGeom& g) {
  constexpr int64_t N = kVecLanes<T>;
  return g.k == 3 && g.s == 2 && g.p == 1 && g.h % 2 == 0 && g.w % 2 == 0 && g.wo > 0 &&
         (g.wo % N == 0 || N % g.wo == 0) && g.ho * g.wo % N == 0;
}

template <typename T> void pool_columns_3s2(const T* x, const PoolGeom& g, T* hs) {
  using V = Vec<T>;
  constexpr int64_t N = kVecLanes<T>;
  const int64_t wo = g.wo;
  // lanes that start a row of hs (left tap in the padding): a fixed pattern with rows shorter than a
  // vector (wo then a power of two: no division per lane, which cost more than an 8x8 plane), else
  // lane 0 of a row's first vector
  const bool short_rows = wo < N;
  const VMask<T> starts = vmask_where<T>([&](int64_t l) { return short_rows ? (l & (wo - 1)) == 0 : l == 0; });
  V prev_odd{};
  for (int64_t j0 = 0; j0 < g.h * wo; j0 += N) {
    V even, odd;  // x[2j], x[2j + 1]: taps 1 and 2 of window j
    vdeinterleave(x + 2 * j0, even, odd);
    V left = vshift_up<1>(prev_odd, odd);  // x[2j - 1]: tap 0
    if (short_rows || j0 % wo == 0) left = vzero_where<T>(left, starts);
    vstore(hs + j0, ((V{} + left) + even) + odd);
    prev_odd = odd;
  }
}

template <typename T> void pool_columns_backward_3s2(const T* vs, const PoolGeom& g, T* gx) {
  using V = Vec<T>;
  constexpr int64_t N = kVecLanes<T>;
  const int64_t wo = g.wo, count = g.h * wo;
  // lanes that end a row (no window to their right): a fixed pattern with short rows, else the top lane
  // of a row's last vector
  const bool short_rows = wo < N;
  const VMask<T> ends = vmask_where<T>([&](int64_t l) { return short_rows ? (l & (wo - 1)) == wo - 1 : l == N - 1; });
  for (int64_t j0 = 0; j0 < count; j0 += N) {
    const V v = vload(vs + j0), next = j0 + N < count ? vload(vs + j0 + N) : V{};
    V right = vshift_down<1>(v, next);  // vs[j + 1]: its window's tap 0 is column 2j + 1
    if (short_rows || (j0 + N) % wo == 0) right = vzero_where<T>(right, ends);
    // column 2j: tap 1 of window j; column 2j + 1: tap 0 of window j + 1, then tap 2 of window j
    vinterleave(gx + 2 * j0, V{} + v, (V{} + right) + v);
  }
}

template <typename T> void pool_rows_3s2(const T* hs, const PoolGeom& g, T* y) {
  using V = Vec<T>;
  constexpr int64_t N = kVecLanes<T>;
  const int64_t wo = g.wo;
  if (wo < N) return with_short_width<T>(wo, [&](auto w) { rows_3s2_short<decltype(w)::value>(hs, g, y); });
  for (int64_t oh = 0; oh < g.ho; ++oh)
    for (int64_t ow = 0; ow < wo; ow += N) {
      const T* a = hs + 2 * oh * wo + ow;  // row 2 oh; the one above is padding for oh 0
      vstore(y + oh * wo + ow, ((V{} + (oh ? vload(a - wo) : V{})) + vload(a)) + vload(a + wo));
    }
}

template <typename T> void pool_rows_backward_3s2(const T* gd, const PoolGeom& g, T* vs) {
  using V = Vec<T>;
  constexpr int64_t N = kVecLanes<T>;
  const int64_t wo = g.wo;
  if (wo < N) return with_short_width<T>(wo, [&](auto w) { rows_backward_3s2_short<decltype(w)::value>(gd, g, vs); });
  for (int64_t oh = 0; oh < g.ho; ++oh)
    for (int64_t ow = 0; ow < wo; ow += N) {
      const T* d = gd + oh * wo + ow;
      const V v = vload(d), below = oh + 1 < g.ho ? vload(d + wo) : V{};
      vstore(vs + 2 * oh * wo + ow, V{} + v);
      vstore(vs + (2 * oh + 1) * wo + ow, (V{} + below) + v);
    }
}

template <typename T>
void avg_pool_plane(const T* x, const PoolGeom& g, const AxisWindows& rows, const AxisWindows& cols, T* hs, T* y) {
  if (pool_fits_3s2<T>(g)) {
    pool_columns_3s2(x, g, hs);
    pool_rows_3s2(hs, g, y);
  } else {
    pool_columns(x, g, cols, hs);
    pool_rows(hs, g, rows, y);
  }
  for (int64_t oh = 0; oh < g.ho; ++oh)
    for (int64_t ow = 0; ow < g.wo; ++ow) y[oh * g.wo + ow] /= static_cast<T>(rows.div[oh] * cols.div[ow]);
}

template <typename T> void avg_pool_plane_backward(const T* gy, const PoolGeom& g, const AxisWindows& rows,
                                                   const AxisWindows& cols, T* gd, T* vs, T* gx) {
  for (int64_t oh = 0; oh < g.ho; ++oh)
    for (int64_t ow = 0; ow < g.wo; ++ow)
      gd[oh * g.wo + ow] = gy[oh * g.wo + ow] / static_cast<T>(rows.div[oh] * cols.div[ow]);
  if (pool_fits_3s2<T>(g)) {
    pool_rows_backward_3s2(gd, g, vs);
    pool_columns_backward_3s2(vs, g, gx);
  } else {
    pool_rows_backward(gd, g, rows, vs);
    pool_columns_backward(vs, g, cols, gx);
  }
}

template <typename T> void avg_pool2d_forward(const PoolGeom& g, int64_t planes, const T* x, T* y) {
  if (use_reference_kernels()) return reference::avg_pool2d_forward(g, planes, x, y);
  const AxisWindows rows(g.ho, g.h, g), cols(g.wo, g.w, g);
  parallel_for(planes, 8, [&](int64_t c0, int64_t c1) {
    std::vector<T> hs(static_cast<size_t>(g.h * g.wo));
    for (int64_t c = c0; c < c1; ++c) avg_pool_plane(x + c * g.h * g.w, g, rows, cols, hs.data(), y + c * g.ho * g.wo);
  });
}

template <typename T> void avg_pool2d_backward(const PoolGeom& g, int64_t planes, const T* gy, T* gx) {
  if (use_reference_kernels()) return reference::avg_pool2d_backward(g, planes, gy, gx);
  const AxisWindows rows(g.ho, g.h, g), cols(g.wo, g.w, g);
  parallel_for(planes, 8, [&](int64_t c0, int64_t c1) {
    std::vector<T> gd(static_cast<size_t>(g.ho * g.wo)), vs(static_cast<size_t>(g.h * g.wo));
    for (int64_t c = c0; c < c1; ++c)
      avg_pool_plane_backward(gy + c * g.ho * g.wo, g, rows, cols, gd.data(), vs.data(), gx + c * g.h * g.w);
  });
}

#define MG_INSTANTIATE(T)                                                                                             \
  template void avg_pool2d_forward<T>(const PoolGeom&, int64_t, const T*, T*);                                        \
  template void avg_pool2d_backward<T>(const PoolGeom&, int64_t, const T*, T*);                                       \
  template bool pool_fits_3s2<T>(const PoolGeom&);                                                                    \
  template void avg_pool_plane<T>(const T*, const PoolGeom&, const AxisWindows&, const AxisWindows&, T*, T*);         \
  template void avg_pool_plane_backward<T>(const T*, const PoolGeom&, const AxisWindows&, const AxisWindows&, T*, T*, \
                                           T*);                                                                       \
  template void pool_columns<T>(const T*, const PoolGeom&, const AxisWindows&, T*);                                   \
  template void pool_rows<T>(const T*, const PoolGeom&, const AxisWindows&, T*);                                      \
  template void pool_rows_backward<T>(const T*, const PoolGeom&, const AxisWindows&, T*);                             \
  template void pool_columns_backward<T>(const T*, const PoolGeom&, const AxisWindows&, T*);                          \
  template void pool_columns_3s2<T>(const T*, const PoolGeom&, T*);                                                   \
  template void pool_rows_3s2<T>(const T*, const PoolGeom&, T*);                                                      \
  template void pool_rows_backward_3s2<T>(const T*, const PoolGeom&, T*);                                             \
  template void pool_columns_backward_3s2<T>(const T*, const PoolGeom&, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
