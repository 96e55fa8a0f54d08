// Average pooling. avg_pool2d's backward spreads each output gradient evenly over the window it
// averaged (the same divisor as the forward: with count_include_pad the padding counts). The loops
// over a plane are in core/kernels/pool.h; planes run in parallel.
#include "core/kernels/pool.h"

#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/parallel.h"

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
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.ho, g.wo}, x.dtype());
  MG_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", [&] {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    const kernels::AxisWindows rows(g.ho, g.h, g), cols(g.wo, g.w, g);
    parallel_for(planes, 8, [&](int64_t c0, int64_t c1) {
      std::vector<scalar_t> hs(static_cast<size_t>(g.h * g.wo));
      for (int64_t c = c0; c < c1; ++c)
        kernels::avg_pool_plane(px + c * g.h * g.w, g, rows, cols, hs.data(), py + c * g.ho * g.wo);
    });
  });
  Shape xs = x.shape();
  record("avg_pool2d", y, {x_in}, [g, planes, xs](const Tensor& g_in) {
    Tensor gy = g_in.contiguous();
    Tensor gx = Tensor::empty(xs, gy.dtype());
    MG_DISPATCH_FLOAT(gy.dtype(), "avg_pool2d backward", [&] {
      const scalar_t* pg = gy.data<scalar_t>();
      scalar_t* px = gx.data<scalar_t>();
      const kernels::AxisWindows rows(g.ho, g.h, g), cols(g.wo, g.w, g);
      parallel_for(planes, 8, [&](int64_t c0, int64_t c1) {
        std::vector<scalar_t> gd(static_cast<size_t>(g.ho * g.wo)), vs(static_cast<size_t>(g.h * g.wo));
        for (int64_t c = c0; c < c1; ++c)
          kernels::avg_pool_plane_backward(pg + c * g.ho * g.wo, g, rows, cols, gd.data(), vs.data(),
                                           px + c * g.h * g.w);
      });
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
