// im2col and col2im on contiguous NCHW data, one sample (and group) at a time: the general path of
// conv2d (core/kernels/conv2d.cpp runs samples in parallel). ConvGeom, the geometry of one sample's
// convolution, is shared by the depthwise and shifted-row kernels.
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

}  // namespace mg::kernels
