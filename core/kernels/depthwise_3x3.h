// The depthwise 3x3 convolution with padding 1 at stride 1 and 2 (every MBConv of MaxViT), one
// channel's plane at a time, in registers: a fast path of core/kernels/depthwise.h.
//
// The nine taps of a vector of outputs are nine vectors made from the input's by shuffles, with no
// copy of the plane; the split-plane path (phase planes and shifted copies in scratch) spent several
// times the arithmetic on that set-up at MaxViT's sizes (16x16 planes down to 4x4).
//   stride 1: the input's own layout; a tap is the vector shifted by a row (w lanes) and a column
//             (1 lane) across its neighbours, the columns a shift carries over a row's edge zeroed.
//   stride 2: output (oh, ow) reads input rows 2oh-1, 2oh, 2oh+1 and, in each, columns 2ow-1, 2ow,
//             2ow+1: the odd values one lane up, the even values and the odd values of the row, each
//             a vector after a deinterleave (as avg_pool2d's 3x3 stride-2 windows, core/kernels/pool.h).
//             Rows narrower than a vector are deinterleaved again in blocks of wo lanes into even and
//             odd rows.
//
// The sums are those of the split path, in the same order: taps in (i, j) order from the bias (or 0),
// the weight gradient into one vector of lanes per tap (position p into lane p % lanes), so that
// dw_reduce and the accumulator layout stay as they are.
#pragma once
#include <cstdint>

#include "maxgrad/core/kernels/conv.h"

namespace mg::kernels {

// 3x3, padding 1, stride 1 (the output the input's size) or stride 2 (even h and w, ho = h / 2, wo =
// w / 2), with wo a divisor or a multiple of the vector's lanes, and ho * wo a multiple of them:
// MaxViT's planes, 32x32 down to 4x4.
template <typename T> bool dw3x3_fits(const ConvGeom& g);

// One channel. y (ho, wo) = the convolution of x (h, w) with w9 (3, 3), plus bias.
template <typename T> void dw3x3_forward(const T* x, const T* w9, T bias, const ConvGeom& g, T* y);
// gx (h, w) = its adjoint applied to gy (ho, wo).
template <typename T> void dw3x3_backward_input(const T* gy, const T* w9, const ConvGeom& g, T* gx);
// acc[t] (one vector of lanes each) += the products gy * (x under tap t), position p into lane p % lanes.
template <typename T> void dw3x3_weight_lanes(const T* gy, const T* x, const ConvGeom& g, T* const* acc);

}  // namespace mg::kernels
