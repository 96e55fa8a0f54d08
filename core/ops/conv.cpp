// conv2d: the cross-correlation of PyTorch's Conv2d, with groups. The loops (four fast paths chosen
// by shape, and the plain reference loops) are behind the two calls of core/kernels/conv2d.h.
#include "maxgrad/core/autograd.h"
#include "maxgrad/core/factory.h"
#include "maxgrad/core/kernels/conv2d.h"
#include "maxgrad/core/ops.h"

namespace mg {

Tensor conv2d(const Tensor& x_in, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t groups) {
  MG_CHECK(x_in.dim() == 4, "conv2d", "input must be (N, C, H, W), got ", x_in.info());
  MG_CHECK(weight.dim() == 4, "conv2d", "weight must be (out_channels, in_channels/groups, kh, kw), got ",
           weight.info());
  MG_CHECK(x_in.dtype() == weight.dtype(), "conv2d", "dtype mismatch: input ", x_in.info(), ", weight ", weight.info());
  MG_CHECK(stride >= 1 && padding >= 0 && groups >= 1, "conv2d", "invalid stride ", stride, ", padding ", padding,
           " or groups ", groups);
  const int64_t n = x_in.size(0), c = x_in.size(1), h = x_in.size(2), wi = x_in.size(3);
  const int64_t o = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  MG_CHECK(c % groups == 0 && o % groups == 0, "conv2d", "in_channels ", c, " and out_channels ", o,
           " must both be divisible by groups ", groups);
  MG_CHECK(weight.size(1) * groups == c, "conv2d", "weight ", weight.info(), " expects ", weight.size(1) * groups,
           " input channels (", weight.size(1), " per group x ", groups, " groups), but input ", x_in.info(), " has ",
           c);
  MG_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == o), "conv2d", "bias ", bias.info(), " must be [", o,
           "]");
  MG_CHECK(!bias.defined() || bias.dtype() == x_in.dtype(), "conv2d", "dtype mismatch: input ", x_in.info(), ", bias ",
           bias.info());
  MG_CHECK(h + 2 * padding >= kh && wi + 2 * padding >= kw, "conv2d", "kernel ", kh, "x", kw,
           " is larger than the padded input ", h + 2 * padding, "x", wi + 2 * padding, " of ", x_in.info());
  const int64_t ho = (h + 2 * padding - kh) / stride + 1, wo = (wi + 2 * padding - kw) / stride + 1;
  const kernels::Conv2dShape a{n, c, h, wi, o, kh, kw, stride, padding, groups, ho, wo};

  Tensor x = x_in.detach().contiguous(), w = weight.detach().contiguous();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();

  // y (n, o, oh, ow) = b[o] + sum_{c in o's group, i, j} w (o, c, i, j) * x (n, c, oh*stride-pad+i, ow*stride-pad+j),
  // with x zero outside the input
  Tensor y = Tensor::empty({n, o, ho, wo}, x.dtype());
  MG_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
    kernels::conv2d_forward<scalar_t>(a, x.data<scalar_t>(), w.data<scalar_t>(),
                                      b.defined() ? b.data<scalar_t>() : nullptr, y.data<scalar_t>());
  });

  const bool need_x = x_in.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  record("conv2d", y, {x_in, weight, bias},
         [a, x, w, need_x, need_w, need_b](const Tensor& g_in) {
           // gy (n, o, ho, wo). Each product w * x of the forward sends gy * w to that x and gy * x to that w:
           //   gx (n, c, h, w)          = the transposed convolution of gy with w (kernel flipped, o <-> c)
           //   gw (o, c/groups, kh, kw) = sum over n, oh, ow of gy (n, o, oh, ow) * x under tap (i, j)
           //   gb (o)                   = sum over n, oh, ow of gy (n, o, oh, ow)
           Tensor g = g_in.contiguous();
           Tensor gx = need_x ? Tensor::empty(x.shape(), x.dtype()) : Tensor();
           Tensor gw = need_w ? Tensor::empty(w.shape(), w.dtype()) : Tensor();
           MG_DISPATCH_FLOAT(g.dtype(), "conv2d backward", [&] {
             kernels::conv2d_backward<scalar_t>(a, g.data<scalar_t>(), x.data<scalar_t>(), w.data<scalar_t>(),
                                                need_x ? gx.data<scalar_t>() : nullptr,
                                                need_w ? gw.data<scalar_t>() : nullptr);
           });
           Tensor gb = need_b ? sum(g, {0, 2, 3}) : Tensor();
           return std::vector<Tensor>{gx, gw, gb};
         },
         {x, w});
  return y;
}

}  // namespace mg
