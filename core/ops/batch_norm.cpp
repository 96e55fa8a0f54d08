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
#include <cmath>
#include <cstdio>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/parallel.h"

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
// Per channel c of x (N, C, M'): sum over n and the inner M' of f(n, c, i). Sequential in double.
template <typename T, typename F> double channel_sum(int64_t n, int64_t inner, F f) {
  double acc = 0;
  for (int64_t s = 0; s < n; ++s)
    for (int64_t i = 0; i < inner; ++i) acc += f(s, i);
  return acc;
}
}  // namespace

Tensor batch_norm(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  MG_CHECK(x_in.dim() >= 2, "batch_norm", "input must be (N, C, ...), got ", x_in.info());
  const int64_t n = x_in.size(0), c = x_in.size(1), inner = x_in.numel() / std::max<int64_t>(n * c, 1);
  for (const Tensor* p : {&running_mean, &running_var, &weight, &bias})
    MG_CHECK(!p->defined() || (p->dim() == 1 && p->size(0) == c), "batch_norm", "per-channel tensor ", p->info(),
             " must be [", c, "] for input ", x_in.info());
  for (const Tensor* p : {&weight, &bias})  // read as raw arrays below (the running stats go through at())
    MG_CHECK(!p->defined() || p->dtype() == x_in.dtype(), "batch_norm", "dtype mismatch: input ", x_in.info(),
             ", weight/bias ", p->info());
  MG_CHECK(training || (running_mean.defined() && running_var.defined()), "batch_norm",
           "evaluation mode needs running_mean and running_var");
  const int64_t count = n * inner;
  MG_CHECK(!training || count > 1, "batch_norm", "expected more than 1 value per channel when training, got input ",
           x_in.info());

  Tensor x = x_in.detach().contiguous();
  // The kernels index w[ch], b[ch]: a strided view (a slice of a bigger parameter) must be made dense.
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor mean_t = Tensor::empty({c}, x.dtype()), var_t = Tensor::empty({c}, x.dtype());
  Tensor rstd_t = Tensor::empty({c}, x.dtype());
  MG_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
    using T = scalar_t;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T* pw = w.defined() ? w.data<T>() : nullptr;
    const T* pb = b.defined() ? b.data<T>() : nullptr;
    T *pm = mean_t.data<T>(), *pv = var_t.data<T>(), *pr = rstd_t.data<T>();
    parallel_for(c, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t ch = c0; ch < c1; ++ch) {
        auto at = [&](int64_t s, int64_t i) { return px[(s * c + ch) * inner + i]; };
        double m, v;
        if (training) {
          m = channel_sum<T>(n, inner, [&](int64_t s, int64_t i) { return static_cast<double>(at(s, i)); }) /
              static_cast<double>(count);
          v = channel_sum<T>(n, inner, [&](int64_t s, int64_t i) {
                double d = at(s, i) - m;
                return d * d;
              }) / static_cast<double>(count);
        } else {
          m = running_mean.at({ch});
          v = running_var.at({ch});
        }
        pm[ch] = static_cast<T>(m), pv[ch] = static_cast<T>(v);
        const T rs = static_cast<T>(1.0 / std::sqrt(v + eps));
        pr[ch] = rs;
        // y = x * scale + shift, with scale = w * rstd, shift = b - mean * scale
        const T scale = pw ? pw[ch] * rs : rs;
        const T shift = (pb ? pb[ch] : T(0)) - static_cast<T>(m) * scale;
        for (int64_t s = 0; s < n; ++s) {
          const T* xr = px + (s * c + ch) * inner;
          T* yr = py + (s * c + ch) * inner;
          for (int64_t i = 0; i < inner; ++i) yr[i] = xr[i] * scale + shift;
        }
      }
    });
  });
  if (training && running_mean.defined() && running_var.defined()) {
    Tensor rm = running_mean, rv = running_var;
    batch_norm_update_stats(rm, rv, mean_t, var_t, count, momentum);
  }

  const bool has_b = bias.defined();
  record("batch_norm", y, {x_in, weight, bias}, [x, w, has_b, mean_t, rstd_t, training, n, c, inner](const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    Tensor gx = Tensor::empty(x.shape(), x.dtype());
    std::vector<double> dw(static_cast<size_t>(c)), db(static_cast<size_t>(c));
    MG_DISPATCH_FLOAT(x.dtype(), "batch_norm backward", [&] {
      using T = scalar_t;
      const T *px = x.data<T>(), *pg = g.data<T>(), *pm = mean_t.data<T>(), *pr = rstd_t.data<T>();
      const T* pw = w.defined() ? w.data<T>() : nullptr;
      T* pgx = gx.data<T>();
      const double count = static_cast<double>(n * inner);
      parallel_for(c, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t ch = c0; ch < c1; ++ch) {
          const T m = pm[ch], rs = pr[ch];
          double sum_g = 0, sum_gx = 0;  // sum(g), sum(g * xhat)
          for (int64_t s = 0; s < n; ++s) {
            const T *xr = px + (s * c + ch) * inner, *gr = pg + (s * c + ch) * inner;
            for (int64_t i = 0; i < inner; ++i) {
              sum_g += gr[i];
              sum_gx += static_cast<double>(gr[i]) * static_cast<double>((xr[i] - m) * rs);
            }
          }
          dw[ch] = sum_gx, db[ch] = sum_g;
          const T k = pw ? pw[ch] * rs : rs;
          const T mg = training ? static_cast<T>(sum_g / count) : T(0);
          const T mgx = training ? static_cast<T>(sum_gx / count) : T(0);
          for (int64_t s = 0; s < n; ++s) {
            const T *xr = px + (s * c + ch) * inner, *gr = pg + (s * c + ch) * inner;
            T* out = pgx + (s * c + ch) * inner;
            for (int64_t i = 0; i < inner; ++i) out[i] = k * (gr[i] - mg - (xr[i] - m) * rs * mgx);
          }
        }
      });
    });
    Tensor gw = w.defined() ? Tensor::from_vector(dw, {c}, x.dtype()) : Tensor();
    Tensor gb = has_b ? Tensor::from_vector(db, {c}, x.dtype()) : Tensor();
    return std::vector<Tensor>{gx, gw, gb};
  }, {x, w});
  return y;
}

}  // namespace mg
