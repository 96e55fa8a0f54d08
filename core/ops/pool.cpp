// Average pooling. avg_pool2d's backward spreads each output gradient evenly over the window it
// averaged (the same divisor as the forward: with count_include_pad the padding counts).
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/parallel.h"

namespace mg {

namespace {
struct PoolGeom {
  int64_t planes, h, w, k, s, p, ho, wo;
  bool include_pad;
};

// The windows along one axis: div[i] is output i's extent in PyTorch's divisor (its window inside the
// padded input with count_include_pad, else inside the input); a 2-d window's divisor is the product
// of its row's and its column's. Tap t of a window (input o * s - p + t) exists for outputs
// [first[t], last[t]).
struct AxisWindows {
  std::vector<int64_t> div, first, last;
  AxisWindows(int64_t out, int64_t in, const PoolGeom& g) : div(out), first(g.k), last(g.k) {
    for (int64_t i = 0; i < out; ++i) {
      const int64_t a = i * g.s - g.p, b = std::min(a + g.k, in + g.p);  // inside the padded input
      div[i] = g.include_pad ? b - a : std::min(b, in) - std::max<int64_t>(a, 0);
    }
    for (int64_t t = 0; t < g.k; ++t) {  // 0 <= o * s - p + t < in
      first[t] = std::min(out, std::max<int64_t>(0, (g.p - t + g.s - 1) / g.s));
      const int64_t reach = in - 1 + g.p - t;  // o * s at most this
      last[t] = reach < 0 ? first[t] : std::max(first[t], std::min(out, reach / g.s + 1));
    }
  }
};

// The pooling is separable: a window's sum is the sum over its rows of each row's sum over the
// window's columns. So each plane goes in two passes of one tap at a time, each a loop over
// contiguous (or, for the columns, evenly strided) values that the compiler vectorises, instead of
// a short double loop per output.
template <typename T> void pool_plane(const T* x, const PoolGeom& g, const AxisWindows& rows, const AxisWindows& cols,
                                      T* __restrict__ hs, T* __restrict__ y) {
  std::fill(hs, hs + g.h * g.wo, T(0));  // hs (h, wo): each input row summed over the column windows
  for (int64_t ih = 0; ih < g.h; ++ih)
    for (int64_t t = 0; t < g.k; ++t) {
      const T* xr = x + ih * g.w + t - g.p;
      T* hr = hs + ih * g.wo;
      for (int64_t ow = cols.first[t]; ow < cols.last[t]; ++ow) hr[ow] += xr[ow * g.s];
    }
  std::fill(y, y + g.ho * g.wo, T(0));
  for (int64_t t = 0; t < g.k; ++t)
    for (int64_t oh = rows.first[t]; oh < rows.last[t]; ++oh) {
      const T* hr = hs + (oh * g.s - g.p + t) * g.wo;
      T* yr = y + oh * g.wo;
      for (int64_t ow = 0; ow < g.wo; ++ow) yr[ow] += hr[ow];
    }
  for (int64_t oh = 0; oh < g.ho; ++oh)
    for (int64_t ow = 0; ow < g.wo; ++ow) y[oh * g.wo + ow] /= static_cast<T>(rows.div[oh] * cols.div[ow]);
}

// The adjoint, in the reverse order: gy / div spread over the rows (vs, (h, wo)), then over the columns.
template <typename T> void pool_plane_backward(const T* gy, const PoolGeom& g, const AxisWindows& rows,
                                               const AxisWindows& cols, T* __restrict__ gd, T* __restrict__ vs,
                                               T* __restrict__ gx) {
  for (int64_t oh = 0; oh < g.ho; ++oh)
    for (int64_t ow = 0; ow < g.wo; ++ow)
      gd[oh * g.wo + ow] = gy[oh * g.wo + ow] / static_cast<T>(rows.div[oh] * cols.div[ow]);
  std::fill(vs, vs + g.h * g.wo, T(0));
  for (int64_t t = 0; t < g.k; ++t)
    for (int64_t oh = rows.first[t]; oh < rows.last[t]; ++oh) {
      T* vr = vs + (oh * g.s - g.p + t) * g.wo;
      const T* gr = gd + oh * g.wo;
      for (int64_t ow = 0; ow < g.wo; ++ow) vr[ow] += gr[ow];
    }
  std::fill(gx, gx + g.h * g.w, T(0));
  for (int64_t ih = 0; ih < g.h; ++ih)
    for (int64_t t = 0; t < g.k; ++t) {
      T* xr = gx + ih * g.w + t - g.p;
      const T* vr = vs + ih * g.wo;
      for (int64_t ow = cols.first[t]; ow < cols.last[t]; ++ow) xr[ow * g.s] += vr[ow];
    }
}
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
      std::vector<scalar_t> hs(static_cast<size_t>(g.h * g.wo));
      for (int64_t c = c0; c < c1; ++c) pool_plane(px + c * g.h * g.w, g, rows, cols, hs.data(), py + c * g.ho * g.wo);
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
        std::vector<scalar_t> gd(static_cast<size_t>(g.ho * g.wo)), vs(static_cast<size_t>(g.h * g.wo));
        for (int64_t c = c0; c < c1; ++c)
          pool_plane_backward(pg + c * g.ho * g.wo, g, rows, cols, gd.data(), vs.data(), px + c * g.h * g.w);
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
