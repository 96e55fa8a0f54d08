// The depthwise 3x3 convolution at stride 2 with padding 1 (the first MBConv of each MaxViT stage),
// one channel's plane at a time, in registers: a fast path of core/kernels/depthwise.h.
//
// Output (oh, ow) reads input rows 2oh-1, 2oh, 2oh+1 and, in each, columns 2ow-1, 2ow, 2ow+1: the
// odd values one lane up, the even values and the odd values of the row, each a vector after a
// deinterleave (as avg_pool2d's 3x3 stride-2 windows, core/kernels/pool.h). Rows narrower than a
// vector are deinterleaved again in blocks of wo lanes into even and odd rows. So the nine taps are
// nine vectors per vector of outputs, with no copy of the plane; the split-plane path (phase planes
// and shifted copies in scratch) spent 10x the arithmetic on that set-up at these sizes.
//
// The sums are those of the split path, in the same order: taps in (i, j) order from the bias (or 0),
// the weight gradient into one vector of lanes per tap (position p into lane p % lanes), so that
// dw_reduce and the accumulator layout stay as they are.
#pragma once
#include <cstdint>

#include "core/kernels/conv.h"

namespace mg::kernels {

// 3x3, stride 2, padding 1, even h and w (then ho = h / 2, wo = w / 2), wo a divisor or a multiple of
// the vector's lanes, and ho * wo a multiple of them: MaxViT's 32x32, 16x16 and 8x8 planes.
template <typename T> bool dw3s2_fits(const ConvGeom& g);

// One channel. y (ho, wo) = the convolution of x (h, w) with w9 (3, 3), plus bias.
template <typename T> void dw3s2_forward(const T* x, const T* w9, T bias, const ConvGeom& g, T* y);
// gx (h, w) = its adjoint applied to gy (ho, wo).
template <typename T> void dw3s2_backward_input(const T* gy, const T* w9, const ConvGeom& g, T* gx);
// acc[t] (one vector of lanes each) += the products gy * (x under tap t), position p into lane p % lanes.
template <typename T> void dw3s2_weight_lanes(const T* gy, const T* x, const ConvGeom& g, T* const* acc);

}  // namespace mg::kernels
