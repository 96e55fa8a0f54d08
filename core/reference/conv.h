// conv2d as its definition: plain nested loops over every output (forward) or every input and weight
// value (backward), one sum in double each. Any stride, padding and groups; single-threaded, no
// im2col, no GEMM. core/kernels/conv2d.h runs these on the reference path and the tests hold the
// fast paths to them.
//
// Shapes (Conv2dShape): x (n, c, h, w), w (o, c/groups, kh, kw), bias (o), y (n, o, ho, wo), with
// ho = (h + 2 pad - kh) / stride + 1 and wo likewise. Output channel o belongs to group
// o / (o_count / groups) and sees that group's c / groups input channels. Output (oh, ow) under tap
// (i, j) reads input (oh * stride - pad + i, ow * stride - pad + j); outside the input it reads 0.
#pragma once
#include "maxgrad/core/kernels/conv2d.h"

namespace mg::reference {

using kernels::Conv2dShape;

// y (n, o, oh, ow) = bias[o] + sum_{c, i, j} w (o, c, i, j) * x (n, group(o) * c/groups + c, oh*s-p+i, ow*s-p+j)
// bias may be null (0).
template <typename T> void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);

// The gradients of the forward's y given gy (n, o, ho, wo); each pointer may be null (not wanted):
//   gx (n, c, h, w)           = sum over the outputs (o, oh, ow) that read x (n, c, ih, iw), of gy * the tap's weight
//   gw (o, c/groups, kh, kw)  = sum_{n, oh, ow} gy (n, o, oh, ow) * x under tap (i, j)
//   gb (o)                    = sum_{n, oh, ow} gy (n, o, oh, ow)
template <typename T>
void conv2d_backward(const Conv2dShape& s, const T* gy, const T* x, const T* w, T* gx, T* gw, T* gb = nullptr);

}  // namespace mg::reference
