// Depthwise convolution (one k x k filter per channel), a fast path of conv2d
// (core/kernels/conv2d.cpp).
//
// MaxViT's depthwise convs run on small planes (16x16 down to 4x4 per channel), where direct
// loops over the taps spend their time on bounds checks and loop set-up per kernel tap,
// not on arithmetic. Here each (sample, channel) plane is first copied into a zero-padded buffer,
// split by the stride into stride x stride "phase" planes (phase (a, b) holds padded rows a, a + s,
// ... and columns b, b + s, ...). Then every tap (i, j) of the filter reads phase (i % s, j % s)
// shifted by (i / s, j / s): a plain contiguous slice. Laid out with one row width wq for
// input and output alike, each tap becomes one multiply-add over ho * wq contiguous values, with no
// bounds checks: the compiler vectorises it. The wq - wo extra columns per output row are computed
// and thrown away (or, in backward, fed zeros).
//
// A "same" convolution (stride 1, output the size of the input) skips the copy: with the input's
// own row width, each tap is already a shifted contiguous slice, and a column test drops the
// values that a shift carries across a row's edge.
//
// At stride 2 the phase planes are made plane by plane in the scratch buffer (in cache), in forward
// and again for the weight gradient. An earlier version split the whole input once in forward and
// kept the copy for the weight gradient: a write and a read of the largest activation (128 x 128 x
// 32 x 32 in the cifar preset) to save a pass that runs in cache, and a train step was no faster.
//
// Each function handles channels [c0, c1) of one sample and takes a
// scratch buffer of dw_scratch_size(g) elements. The 3x3 convolutions with padding 1 on MaxViT's
// planes (dw3x3_fits) go to the register kernels of core/kernels/depthwise_3x3.h instead, with the
// same sums in the same order and the same accumulator layout.
#pragma once
#include <cstdint>

#include "maxgrad/core/kernels/conv.h"

namespace mg::kernels {

// Elements of scratch the functions below need (for any of them).
int64_t dw_scratch_size(const ConvGeom& g);

// y (c, ho, wo) = depthwise conv of x (c, h, w) with w (c, kh, kw) (+ bias (c) if not null)
template <typename T>
void dw_forward(const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t c0, int64_t c1, T* y, T* scratch);
// gx (c, h, w) = the adjoint (transposed convolution) applied to gy (c, ho, wo)
template <typename T>
void dw_backward_input(const T* gy, const T* w, const ConvGeom& g, int64_t c0, int64_t c1, T* gx, T* scratch);
// acc (c, kh*kw, ho*wq) += per tap, the products gy * (x under that tap), not yet fully summed over
// positions: a plane of at least one SIMD vector is summed into the first vector's lanes (position
// p into lane p % lanes), a smaller one or the general path's is kept per position; summing them over
// samples first keeps this a vectorised add; dw_reduce then sums each tap's row in a fixed order.
// acc is dw_acc_size(g) elements per channel.
int64_t dw_acc_size(const ConvGeom& g);
template <typename T>
void dw_backward_weight_acc(const T* gy, const T* x, const ConvGeom& g, int64_t c0, int64_t c1, T* acc, T* scratch);
// gw (c, kh, kw) = the sums of acc's rows (in double), channels [c0, c1)
template <typename T> void dw_reduce(const T* acc, const ConvGeom& g, int64_t c0, int64_t c1, T* gw);

}  // namespace mg::kernels
