// Convolution kernels on contiguous NCHW data, for one sample at a time (the op in
// core/ops/conv.cpp runs samples in parallel). Geometry is shared by all of them.
#pragma once
#include <cstdint>

namespace mg::kernels {

struct ConvGeom {
  int64_t c, h, w;  // input channels (of one group), height, width
  int64_t kh, kw;   // kernel
  int64_t stride, pad;
  int64_t ho, wo;  // output height, width
};

// col (c*kh*kw, ho*wo) <- x (c, h, w): every receptive field as a column (zeros in the padding).
// With a range of output rows [oh0, oh1), only their columns: col (c*kh*kw, (oh1 - oh0) * wo).
template <typename T> void im2col(const T* x, const ConvGeom& g, T* col, int64_t oh0 = 0, int64_t oh1 = -1);
// x (c, h, w) += col (c*kh*kw, ho*wo): the adjoint of im2col (overlapping windows add up); with a
// range of output rows, col holds only theirs, as im2col makes it.
template <typename T> void col2im(const T* col, const ConvGeom& g, T* x, int64_t oh0 = 0, int64_t oh1 = -1);

// Depthwise (one filter per channel), for channels [c0, c1) of one sample.
// y (c, ho, wo) = sum_ij w (c, kh, kw) * x (c, h, w) shifted (+ bias (c) if not null)
template <typename T>
void depthwise_forward(const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t c0, int64_t c1, T* y);
// gx (c, h, w) = sum over outputs of gy * w (the transposed correlation), channels [c0, c1)
template <typename T>
void depthwise_backward_input(const T* gy, const T* w, const ConvGeom& g, int64_t c0, int64_t c1, T* gx);
// gw (c, kh, kw) += sum over outputs of gy * x, channels [c0, c1)
template <typename T>
void depthwise_backward_weight(const T* gy, const T* x, const ConvGeom& g, int64_t c0, int64_t c1, T* gw);

// The plain definition, seven nested loops, kept to test the fast paths against:
// y (n, o, ho, wo) = bias[o] + sum_{c in group, i, j} w (o, c, i, j) * x (n, c, ho*s-p+i, wo*s-p+j)
template <typename T> void conv2d_reference(const T* x, const T* w, const T* bias, int64_t n, int64_t c_in, int64_t h,
                                            int64_t w_in, int64_t c_out, int64_t kh, int64_t kw, int64_t stride,
                                            int64_t pad, int64_t groups, T* y);

}  // namespace mg::kernels
