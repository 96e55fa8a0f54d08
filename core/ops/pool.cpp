// Average pooling. avg_pool2d's backward spreads each output gradient evenly over the window it
// averaged (the same divisor as the forward: with count_include_pad the padding counts).
#include "core/autograd.h"
#include "core/ops.h"
#include "core/parallel.h"

#include <vector>

namespace mg {

namespace {
struct PoolGeom {
  int64_t planes, h, w, k, s, p, ho, wo;
  bool include_pad;
};

// The windows along one axis: output i covers input [lo[i], hi[i]) clipped to the input, and
// div[i] is its extent in PyTorch's divisor (inside the padded input with count_include_pad, else
// inside the input). A 2-d window is a row window times a column window, and its divisor the
// product: computed once per axis instead of once per output.
struct AxisWindows {
  std::vector<int64_t> lo, hi, div;
  AxisWindows(int64_t out, int64_t in, const PoolGeom& g) : lo(out), hi(out), div(out) {
    for (int64_t i = 0; i < out; ++i) {
      const int64_t a = i * g.s - g.p, b = std::min(a + g.k, in + g.p);  // inside the padded input
      lo[i] = std::max<int64_t>(a, 0), hi[i] = std::min(b, in);
      div[i] = g.include_pad ? b - a : hi[i] - lo[i];
    }
  }
};
}  // namespace

// x (N, C, H, W) -> (N, C, Ho, Wo), Ho = (H + 2p - k) / s + 1
Tensor avg_pool2d(const Tensor& x_in, int64_t kernel, int64_t stride, int64_t padding, bool count_include_pad) {
  MG_CHECK(x_in.dim() == 4, "avg_pool2d", "input must be (N, C, H, W), got ", x_in.info());
  MG_CHECK(kernel >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernel, "avg_pool2d", "invalid kernel ", kernel,
           ", stride ", stride, ", padding ", padding, " (padding must be at most half the kernel)");
  MG_CHECK(x_in.size(2) + 2 * padding >= kernel && x_in.size(3) + 2 * padding >= kernel, "avg_pool2d", "kernel ",
           kernel, " is larger than the padded input ", x_in.info());
  Tensor x = x_in.detach().contiguous();
  PoolGeom g{x.size(0) * x.size(1), x.size(2), x.size(3), kernel, stride, padding, 0, 0, count_include_pad};
  g.ho = (g.h + 2 * padding - kernel) / stride + 1;
  g.wo = (g.w + 2 * padding - kernel) / stride + 1;
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.ho, g.wo}, x.dtype());
  MG_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", [&] {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    const AxisWindows rows(g.ho, g.h, g), cols(g.wo, g.w, g);
    parallel_for(g.planes, 8, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t oh = 0; oh < g.ho; ++oh)
          for (int64_t ow = 0; ow < g.wo; ++ow) {
            scalar_t acc = 0;
            for (int64_t ih = rows.lo[oh]; ih < rows.hi[oh]; ++ih)
              for (int64_t iw = cols.lo[ow]; iw < cols.hi[ow]; ++iw) acc += px[(c * g.h + ih) * g.w + iw];
            py[(c * g.ho + oh) * g.wo + ow] = acc / static_cast<scalar_t>(rows.div[oh] * cols.div[ow]);
          }
    });
  });
  Shape xs = x.shape();
  record("avg_pool2d", y, {x_in}, [g, xs](const Tensor& g_in) {
    Tensor gy = g_in.contiguous();
    Tensor gx = Tensor::empty(xs, gy.dtype());
    MG_DISPATCH_FLOAT(gy.dtype(), "avg_pool2d backward", [&] {
      const scalar_t* pg = gy.data<scalar_t>();
      scalar_t* px = gx.data<scalar_t>();
      const AxisWindows rows(g.ho, g.h, g), cols(g.wo, g.w, g);
      parallel_for(g.planes, 8, [&](int64_t c0, int64_t c1) {
        std::fill(px + c0 * g.h * g.w, px + c1 * g.h * g.w, scalar_t(0));
        for (int64_t c = c0; c < c1; ++c)
          for (int64_t oh = 0; oh < g.ho; ++oh)
            for (int64_t ow = 0; ow < g.wo; ++ow) {
              const scalar_t v = pg[(c * g.ho + oh) * g.wo + ow] / static_cast<scalar_t>(rows.div[oh] * cols.div[ow]);
              for (int64_t ih = rows.lo[oh]; ih < rows.hi[oh]; ++ih)
                for (int64_t iw = cols.lo[ow]; iw < cols.hi[ow]; ++iw) px[(c * g.h + ih) * g.w + iw] += v;
            }
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
