// avg_pool2d's loops over (H, W) planes, for core/ops/pool.cpp. The pooling is separable: a
// window's sum is the sum over its rows of each row's sum over the window's columns. So a plane goes
// in two passes, columns then rows (and the backward, its adjoint, rows then columns), each a loop
// over contiguous values instead of a short double loop per output.
//
// The general passes take one tap at a time; for MaxViT's downsampling shortcut (3x3 windows,
// stride 2, padding 1, even sizes) the taps of a window are the even and odd values of a row or
// the even and odd rows of a plane, and the *_3s2 passes read them as whole vectors (deinterleaved
// in registers) instead of every other value, a load per vector instead of a load per value. They
// add the same values in the same order, so they give the same bits as the general
// passes, which the tests hold them to.
#pragma once
#include <cstdint>
#include <vector>

namespace mg::kernels {

struct PoolGeom {
  int64_t h, w, k, s, p, ho, wo;  // one plane (h, w) -> (ho, wo), window k, stride s, padding p
  bool include_pad;
};

// The windows along one axis: div[i] is output i's extent in PyTorch's divisor (its window inside the
// padded input with count_include_pad, else inside the input); a 2-d window's divisor is the product
// of its row's and its column's. Tap t of a window (input o * s - p + t) exists for outputs
// [first[t], last[t]).
struct AxisWindows {
  std::vector<int64_t> div, first, last;
  AxisWindows(int64_t out, int64_t in, const PoolGeom& g);
};

// Whether the *_3s2 passes take this geometry: 3x3 windows, stride 2, padding 1, h and w even, and
// whole vectors of outputs per plane (the width wo a divisor or a multiple of the vector's lanes, and
// ho * wo a multiple of them).
template <typename T> bool pool_fits_3s2(const PoolGeom& g);

// The entry points of core/ops/pool.cpp, for planes (n * c) planes at once, in parallel: the plain
// loops of core/reference/pool.h on the reference path, else the passes below, plane by plane.
// y (planes, ho, wo) = the window averages of x (planes, h, w)
template <typename T> void avg_pool2d_forward(const PoolGeom& g, int64_t planes, const T* x, T* y);
// gx (planes, h, w) = each gy (planes, ho, wo) / divisor spread over its window
template <typename T> void avg_pool2d_backward(const PoolGeom& g, int64_t planes, const T* gy, T* gx);

// One plane. y (ho, wo) = the window averages of x (h, w); hs is (h, wo) scratch. Takes the 3s2 passes when they fit.
template <typename T>
void avg_pool_plane(const T* x, const PoolGeom& g, const AxisWindows& rows, const AxisWindows& cols, T* hs, T* y);
// gx (h, w) = the adjoint applied to gy (ho, wo): each gy / divisor spread over its window; gd
// (ho, wo) and vs (h, wo) are scratch.
template <typename T> void avg_pool_plane_backward(const T* gy, const PoolGeom& g, const AxisWindows& rows,
                                                   const AxisWindows& cols, T* gd, T* vs, T* gx);

// The passes themselves. Columns: hs (h, wo) = each row of x summed over the column windows; rows:
// y (ho, wo) = hs summed over the row windows (not yet divided). The backward ones are their adjoints:
// vs (h, wo) from gd (ho, wo), then gx (h, w) from vs.
template <typename T> void pool_columns(const T* x, const PoolGeom& g, const AxisWindows& cols, T* hs);
template <typename T> void pool_rows(const T* hs, const PoolGeom& g, const AxisWindows& rows, T* y);
template <typename T> void pool_rows_backward(const T* gd, const PoolGeom& g, const AxisWindows& rows, T* vs);
template <typename T> void pool_columns_backward(const T* vs, const PoolGeom& g, const AxisWindows& cols, T* gx);
template <typename T> void pool_columns_3s2(const T* x, const PoolGeom& g, T* hs);
template <typename T> void pool_rows_3s2(const T* hs, const PoolGeom& g, T* y);
template <typename T> void pool_rows_backward_3s2(const T* gd, const PoolGeom& g, T* vs);
template <typename T> void pool_columns_backward_3s2(const T* vs, const PoolGeom& g, T* gx);

}  // namespace mg::kernels
