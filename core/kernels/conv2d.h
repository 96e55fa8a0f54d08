// conv2d's kernels on whole batches of contiguous NCHW data: the two entry points core/ops/conv.cpp
// calls. Each first looks at the kernel path (core/kernel_path.h): on `reference` it runs the plain
// loops of core/reference/conv.h; on `fast` it picks one of four paths by the shape of the problem:
//   depthwise (groups == C == O): no GEMM; 3x3 with padding 1 in registers (core/kernels/depthwise_3x3.h),
//                                  others through padded phase planes (core/kernels/depthwise.h);
//   1x1, stride 1, no padding:     the NCHW sample is already a (C, H*W) matrix, so y = W @ x; on
//                                  small maps, for a block of samples gathered side by side;
//   thin, stride 1 (float):        shifted rows of the padded input as the GEMM's operand, no im2col
//                                  (core/kernels/conv_shifted.h: the stem);
//   anything else:                 im2col (core/kernels/conv.h), then a GEMM per sample and group.
// Samples run in parallel; a forward on fewer than 4 samples (batch-1 inference) splits each
// sample's product across the threads instead. Weight gradients are summed over fixed groups of
// samples, then over the groups in order, so the result does not depend on the thread count.
#pragma once
#include <cstdint>

namespace mg::kernels {

struct Conv2dShape {
  int64_t n, c, h, w;  // input x (n, c, h, w)
  int64_t o, kh, kw;   // weight (o, c / groups, kh, kw), bias (o)
  int64_t stride, pad, groups;
  int64_t ho, wo;  // output y (n, o, ho, wo)
};

// y (n, o, oh, ow) = bias[o] + sum_{c in o's group, i, j} w (o, c, i, j) * x (n, c, oh*stride-pad+i, ow*stride-pad+j)
// (bias may be null: no bias)
template <typename T> void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);

// From gy (n, o, ho, wo): gx (n, c, h, w), the transposed convolution of gy with w, and gw (o, c/groups,
// kh, kw), the correlation of gy with x. Either may be null (not wanted). The bias gradient is the sum
// of gy over (n, ho, wo), which the op takes with sum().
template <typename T> void conv2d_backward(const Conv2dShape& s, const T* gy, const T* x, const T* w, T* gx, T* gw);

}  // namespace mg::kernels
