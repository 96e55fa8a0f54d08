// A stride-1 convolution without im2col: an implicit GEMM over shifted rows (float).
//
// With the input zero-padded into planes of width wp = w + 2 pad, the value that tap (c, i, j) reads
// for output (oh, ow) is xp[c * plane + i * wp + j + (oh * wp + ow)]. So over output positions
// counted in the padded width, p = oh * wp + ow, every tap's im2col row is a row of the padded buffer
// itself, starting at offset(c, i, j) = c * plane + i * wp + j. The forward is then one GEMM,
//   y' (o, np) = W (o, c*kh*kw) @ B,  B's row (c, i, j) = xp[offset(c, i, j) + 0 .. np),
// run by gemm_small_k_rows with B's rows read in place; np = ho * wp rounded up to whole vectors, and
// the wp - wo extra columns of each output row are computed and dropped. im2col wrote every input
// value kh * kw times and col2im added them back: two passes over a buffer kh * kw times the input.
// The input gradient is the same kind of convolution: of the output gradient, padded by kh - 1 - pad,
// with the kernel flipped and its in and out channels swapped (shifted_flip_weight). The weight
// gradient is a dot product along p for every (out channel, tap):
//   gw (o, c*kh*kw) += sum_p gy' (o, p) * xp[offset(c, i, j) + p],
// with gy' the output gradient in the padded-width layout (zeros in the extra columns).
//
// The depthwise kernels (core/kernels/depthwise.h) use the same shifted-slice idea one channel at a
// time. The cifar preset's stem (3 -> 32 and 32 -> 32 channels, 3x3 at 32x32) runs here.
#pragma once
#include <cstdint>
#include <vector>

#include "maxgrad/core/kernels/conv.h"

namespace mg::kernels {

struct ShiftedConv {
  int64_t c, h, w, o, kh, kw, pad;  // input channels, input size, output channels, kernel, padding
  int64_t ho, wo;                   // output size (stride 1)
  int64_t hp, wp, plane;            // padded planes: hp x wp = plane values each
  int64_t np;                       // output positions counted in the padded width, a multiple of 16
  int64_t padded_size;              // values in a padded buffer: the last tap's row reads np past its offset
  std::vector<int64_t> offsets;     // offset(c, i, j) for r = (c * kh + i) * kw + j, the weight's order

  ShiftedConv(int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw, int64_t pad);
  int64_t taps() const { return c * kh * kw; }
  // The input-gradient problem: gy (o, ho, wo) padded by kh - 1 - pad, convolved to (c, h, w).
  ShiftedConv transposed() const;
};

// Whether a conv goes this way: float (the caller checks), stride 1, one group, a square kernel larger
// than 1x1, no more than kh - 1 padding, and thin (1 to 64 in and out channels, where OpenBLAS packs as much
// as it multiplies; wider convs keep im2col + OpenBLAS, and so do empty ones).
bool shifted_conv_fits(const ConvGeom& g, int64_t out_channels, int64_t groups);

// xp (padded_size) <- x (c, h, w) in padded planes, zeros around and in the tail.
void shifted_pad(const float* x, const ShiftedConv& s, float* xp);
// gyp (o, np) <- gy (o, ho, wo) in the padded-width layout: zeros in the extra columns and the tail.
void shifted_spread(const float* gy, const ShiftedConv& s, float* gyp);
// y (o, ho, wo) = W (o, c, kh, kw) * x [+ bias (o)], from xp = shifted_pad(x); scratch: o * np floats.
// split_columns: the product's columns in blocks run as parallel tasks (a batch too small to give
// every thread samples); the same bits either way.
void shifted_forward(const float* xp, const float* w, const float* bias, const ShiftedConv& s, float* scratch, float* y,
                     bool split_columns = false);
// gw (o, c*kh*kw) += the weight gradient of one sample, from gyp = shifted_spread(gy) and xp = shifted_pad(x).
// Each value is a fixed sum over p (by vector lanes, then the lanes in order): the bits depend on the shapes only.
void shifted_weight_grad(const float* gyp, const float* xp, const ShiftedConv& s, float* gw);
// wt (c, o, kh, kw) <- w (o, c, kh, kw) flipped in both kernel axes: the input gradient's kernel.
void shifted_flip_weight(const float* w, int64_t o, int64_t c, int64_t kh, int64_t kw, float* wt);

}  // namespace mg::kernels
