// Average pooling. avg_pool2d's backward spreads each output gradient evenly over the window it
// averaged (the same divisor as the forward: with count_include_pad the padding counts). The loops
// are behind the two calls of core/kernels/pool.h.
#include "maxgrad/core/kernels/pool.h"

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/ops.h"

namespace mg {

Tensor avg_pool2d(const Tensor& x_in, int64_t kernel, int64_t stride, int64_t padding, bool count_include_pad) {
  MG_CHECK(x_in.dim() == 4, "avg_pool2d", "input must be (N, C, H, W), got ", x_in.info());
  MG_CHECK(kernel >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernel, "avg_pool2d", "invalid kernel ", kernel,
           ", stride ", stride, ", padding ", padding, " (padding must be at most half the kernel)");
  MG_CHECK(x_in.size(2) + 2 * padding >= kernel && x_in.size(3) + 2 * padding >= kernel, "avg_pool2d", "kernel ",
           kernel, " is larger than the padded input ", x_in.info());
  Tensor x = x_in.detach().contiguous();
  const int64_t planes = x.size(0) * x.size(1);
  kernels::PoolGeom g{x.size(2), x.size(3), kernel, stride, padding, 0, 0, count_include_pad};
  g.ho = (g.h + 2 * padding - kernel) / stride + 1;
  g.wo = (g.w + 2 * padding - kernel) / stride + 1;
  // y (n, c, ho, wo) = the sum of x over each k x k window / its divisor (with count_include_pad the
  // padding counts; else only the inputs inside)
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.ho, g.wo}, x.dtype());
  MG_DISPATCH_FLOAT(x.dtype(), "avg_pool2d",
                    [&] { kernels::avg_pool2d_forward<scalar_t>(g, planes, x.data<scalar_t>(), y.data<scalar_t>()); });
  Shape xs = x.shape();
  record("avg_pool2d", y, {x_in}, [g, planes, xs](const Tensor& g_in) {
    // gx (n, c, h, w) = sum over the windows holding each input of gy (n, c, ho, wo) / the window's divisor
    Tensor gy = g_in.contiguous();
    Tensor gx = Tensor::empty(xs, gy.dtype());
    MG_DISPATCH_FLOAT(gy.dtype(), "avg_pool2d backward", [&] {
      kernels::avg_pool2d_backward<scalar_t>(g, planes, gy.data<scalar_t>(), gx.data<scalar_t>());
    });
    return std::vector<Tensor>{gx};
  });
  return y;
}

// (N, C, H, W) -> (N, C, 1, 1): the mean over each plane (gradient: g / (H W) everywhere)
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t output_size) {
  MG_CHECK(x.dim() == 4, "adaptive_avg_pool2d", "input must be (N, C, H, W), got ", x.info());
  MG_CHECK(output_size == 1, "adaptive_avg_pool2d", "only output_size 1 (global average pooling) is supported, got ",
           output_size);
  return mean(x, {2, 3}, /*keepdim=*/true);
}

}  // namespace mg
