// LayerNorm over the last dim C, fused. With xhat = (x - mean) * rstd (biased variance):
//   y  = xhat * w + b
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = g * w
//   dw = sum over rows of g * xhat,  db = sum over rows of g
// The loops are in core/kernels/layer_norm.cpp (vectorised row sums; dw, db in fixed blocks of rows).
#include "maxgrad/core/kernels/layer_norm.h"

#include <vector>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/kernels/grad_in_place.h"
#include "maxgrad/core/ops.h"

namespace mg {

Tensor layer_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias, double eps) {
  MG_CHECK(x_in.dim() >= 1, "layer_norm", "input must have at least 1 dim, got ", x_in.info());
  const int64_t c = x_in.size(-1);
  for (const Tensor* p : {&weight, &bias}) {
    MG_CHECK(!p->defined() || (p->dim() == 1 && p->size(0) == c), "layer_norm", "weight/bias ", p->info(), " must be [",
             c, "] to match the last dim of ", x_in.info());
    MG_CHECK(!p->defined() || p->dtype() == x_in.dtype(), "layer_norm", "dtype mismatch: input ", x_in.info(),
             ", weight/bias ", p->info());
  }
  Tensor x = x_in.detach().contiguous();
  // The kernels index w[i], b[i]: a strided view (a slice of a bigger parameter) must be made dense.
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  // x (..., C) as rows (rows, C); y like x; per row mean and rstd (rows), kept for the backward
  const kernels::LnGeom geom{x.numel() / std::max<int64_t>(c, 1), c};
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor rstd = Tensor::empty({geom.rows}, x.dtype()), mu = Tensor::empty({geom.rows}, x.dtype());
  MG_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
    using T = scalar_t;
    kernels::ln_forward(x.data<T>(), geom, eps, w.defined() ? w.data<T>() : nullptr,
                        b.defined() ? b.data<T>() : nullptr, y.data<T>(), mu.data<T>(), rstd.data<T>());
  });
  // g (rows, C) -> gx (rows, C), written over g when the engine holds g alone; gw, gb (C)
  const bool has_b = bias.defined();
  record("layer_norm", y, {x_in, weight, bias},
         [x, w, has_b, mu, rstd, geom](const Tensor& g_in) {
           const kernels::GradInPlace io = kernels::grad_in_place(g_in);
           std::vector<double> dw(static_cast<size_t>(geom.c)), db(static_cast<size_t>(geom.c));
           MG_DISPATCH_FLOAT(x.dtype(), "layer_norm backward", [&] {
             using T = scalar_t;
             kernels::ln_backward(io.g.data<T>(), x.data<T>(), geom, mu.data<T>(), rstd.data<T>(),
                                  w.defined() ? w.data<T>() : nullptr, io.gx.data<T>(), dw.data(), db.data());
           });
           Tensor gw = w.defined() ? Tensor::from_vector(dw, {geom.c}, x.dtype()) : Tensor();
           Tensor gb = has_b ? Tensor::from_vector(db, {geom.c}, x.dtype()) : Tensor();
           return std::vector<Tensor>{io.gx, gw, gb};
         },
         {x, w});
  return y;
}

}  // namespace mg
