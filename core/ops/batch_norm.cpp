// BatchNorm, functional form, over every dim but the channel dim 1 of x (N, C, ...).
//
// Training: normalise with the batch mean and the *biased* batch variance, then (separately, in
// batch_norm_update_stats) move the running statistics toward the batch ones.
// Evaluation: normalise with the running statistics.
//
// With xhat = (x - mean) * rstd, per channel over its M = N * H * W values:
//   y  = xhat * w + b
//   training: dx = w * rstd * (g - mean(g) - xhat * mean(g * xhat))   (mean and var depend on x)
//   eval:     dx = w * rstd * g                                        (running stats are constants)
//   dw = sum(g * xhat),  db = sum(g)
#include "maxgrad/core/kernels/batch_norm.h"

#include <vector>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/kernels/grad_in_place.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/core/runtime/profiler.h"

namespace mg {

// The running-statistics update, written to be read and stepped through in a debugger
// (docs/batchnorm.md): one channel per iteration, every quantity in a named local.
// PyTorch's convention: running = (1 - momentum) * running + momentum * batch_statistic.
// (TensorFlow's "decay" d is the other way round: moving = d * moving + (1 - d) * batch, so
//  PyTorch momentum 0.01 is TensorFlow decay 0.99.)
void batch_norm_update_stats(Tensor& running_mean, Tensor& running_var, const Tensor& batch_mean,
                             const Tensor& batch_var_biased, int64_t count, double momentum) {
  MG_CHECK(count > 1, "batch_norm", "running_var needs the unbiased variance, so each channel needs more than 1 "
           "value per batch; got ", count, " (batch size x spatial size)");
  NoGradGuard no_grad;
  const int64_t channels = running_mean.numel();
  for (int64_t c = 0; c < channels; ++c) {
    const double old_mean = running_mean.at({c});
    const double old_var = running_var.at({c});
    const double mean = batch_mean.at({c});
    const double var_biased = batch_var_biased.at({c});
    const double var_unbiased = var_biased * static_cast<double>(count) / static_cast<double>(count - 1);
    const double new_mean = (1.0 - momentum) * old_mean + momentum * mean;
    const double new_var = (1.0 - momentum) * old_var + momentum * var_unbiased;
    running_mean.narrow(0, c, 1).fill_(new_mean);
    running_var.narrow(0, c, 1).fill_(new_var);
  }
}

namespace {
// The array behind an optional per-channel tensor, or null.
template <typename T> const T* data_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

// With act = Gelu it is batch_norm_gelu: y = gelu(xhat * w + b), and its backward first turns the
// incoming gradient into that of xhat * w + b, g * gelu'(xhat * w + b), recomputing the value from x
// rather than keeping it. The loops are in core/kernels/batch_norm.cpp.
Tensor batch_norm_impl(const char* name, const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps,
                       kernels::BnAct act) {
  MG_CHECK(x_in.dim() >= 2, name, "input must be (N, C, ...), got ", x_in.info());
  const int64_t n = x_in.size(0), c = x_in.size(1), inner = x_in.numel() / std::max<int64_t>(n * c, 1);
  for (const Tensor* p : {&running_mean, &running_var, &weight, &bias})
    MG_CHECK(!p->defined() || (p->dim() == 1 && p->size(0) == c), name, "per-channel tensor ", p->info(), " must be [",
             c, "] for input ", x_in.info());
  for (const Tensor* p : {&weight, &bias})  // read as raw arrays below (the running stats go through to_vector())
    MG_CHECK(!p->defined() || p->dtype() == x_in.dtype(), name, "dtype mismatch: input ", x_in.info(), ", weight/bias ",
             p->info());
  MG_CHECK(training || (running_mean.defined() && running_var.defined()), name,
           "evaluation mode needs running_mean and running_var");
  const int64_t count = n * inner;
  MG_CHECK(!training || count > 1, name, "expected more than 1 value per channel when training, got input ",
           x_in.info());

  // x (N, C, inner), w and b (C) dense: the kernels index them as arrays
  Tensor x = x_in.detach().contiguous();
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  // per channel (C): the statistics used (the batch's or the running ones), rstd = 1 / sqrt(var + eps),
  // and y = x * scale + shift (then GELU), scale = w * rstd, shift = b - mean * scale
  Tensor mean_t = Tensor::empty({c}, x.dtype()), var_t = Tensor::empty({c}, x.dtype());
  Tensor rstd_t = Tensor::empty({c}, x.dtype());
  Tensor scale_t = Tensor::empty({c}, x.dtype()), shift_t = Tensor::empty({c}, x.dtype());
  std::vector<double> run_mean, run_var;  // evaluation: the running statistics, in double
  if (!training) run_mean = running_mean.to_vector(), run_var = running_var.to_vector();
  const kernels::BnGeom geom{n, c, inner};
  MG_DISPATCH_FLOAT(x.dtype(), name, [&] {
    using T = scalar_t;
    kernels::bn_forward(x.data<T>(), geom, training, run_mean.data(), run_var.data(), eps, data_or_null<T>(w),
                        data_or_null<T>(b), act, y.data<T>(), mean_t.data<T>(), var_t.data<T>(), rstd_t.data<T>(),
                        scale_t.data<T>(), shift_t.data<T>());
  });
  if (training && running_mean.defined() && running_var.defined()) {
    Tensor rm = running_mean, rv = running_var;
    profiler::PartOfOp part;  // its narrow + fill_ ops are this op's time (core/runtime/profiler.h)
    batch_norm_update_stats(rm, rv, mean_t, var_t, count, momentum);
  }

  // g (N, C, inner) -> gx (N, C, inner), written over g when the engine holds g alone; gw, gb (C)
  record(name, y, {x_in, weight, bias},
         [x, w, b, mean_t, rstd_t, scale_t, shift_t, training, geom, act](const Tensor& g_in) {
           const kernels::GradInPlace io = kernels::grad_in_place(g_in);
           std::vector<double> dw(static_cast<size_t>(geom.c)), db(static_cast<size_t>(geom.c));
           MG_DISPATCH_FLOAT(x.dtype(), "batch_norm backward", [&] {
             using T = scalar_t;
             // db = sum(g), dw = sum(g * xhat); gx from them (core/kernels/batch_norm.h)
             kernels::bn_backward(io.g.data<T>(), x.data<T>(), geom, mean_t.data<T>(), rstd_t.data<T>(),
                                  data_or_null<T>(w), data_or_null<T>(b), training, act, scale_t.data<T>(),
                                  shift_t.data<T>(), io.gx.data<T>(), db.data(), dw.data());
           });
           Tensor gw = w.defined() ? Tensor::from_vector(dw, {geom.c}, x.dtype()) : Tensor();
           Tensor gb = b.defined() ? Tensor::from_vector(db, {geom.c}, x.dtype()) : Tensor();
           return std::vector<Tensor>{io.gx, gw, gb};
         },
         {x, w, b});
  return y;
}
}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  return batch_norm_impl("batch_norm", x, running_mean, running_var, weight, bias, training, momentum, eps,
                         kernels::BnAct::None);
}

Tensor batch_norm_gelu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum, double eps) {
  return batch_norm_impl("batch_norm_gelu", x, running_mean, running_var, weight, bias, training, momentum, eps,
                         kernels::BnAct::Gelu);
}

}  // namespace mg
