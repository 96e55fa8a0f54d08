// sync_batch_norm: core/ops/batch_norm.cpp's arithmetic through the same loops (core/kernels/
// batch_norm.h), with the per-channel sums added over every rank in between. With
// xhat = (x - mean) * rstd, per channel over the global count M:
//   y  = xhat * w + b
//   dx = w * rstd * (g - sum(g) / M - xhat * sum(g * xhat) / M)    (sums over every rank's values)
//   dw = sum(g * xhat), db = sum(g)                                  (this rank's values only)
#include "maxgrad/nn/dist/sync_batchnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/kernels/batch_norm.h"
#include "maxgrad/nn/batchnorm.h"

namespace mg::dist {

namespace {
// Sums `v` over the ranks, with a last entry that every rank sets to `c`: a rank calling for
// another layer (out of step) makes that entry differ from c * ranks.
void allreduce_checked(dist::ProcessGroup& group, std::vector<double>& v, int64_t c, const char* what) {
  v.push_back(static_cast<double>(c));
  group.allreduce_sum(v.data(), static_cast<int64_t>(v.size()));
  const double check = v.back();
  v.pop_back();
  MG_CHECK(check == static_cast<double>(c) * group.size(), "sync_batch_norm", "the ranks are out of step in the ", what,
           ": this rank's layer has ", c, " channels but the ranks' channel counts sum to ", check, " over ",
           group.size(), " ranks; every rank must run the same model, with its layers in the same order");
}
}  // namespace

Tensor sync_batch_norm(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps,
                       const std::shared_ptr<dist::ProcessGroup>& group) {
  MG_CHECK(group != nullptr, "sync_batch_norm", "needs a process group (dist::init_process_group())");
  MG_CHECK(x_in.dim() >= 2, "sync_batch_norm", "input must be (N, C, ...), got ", x_in.info());
  const int64_t n = x_in.size(0), c = x_in.size(1), inner = n * c > 0 ? x_in.numel() / (n * c) : 0;
  for (const Tensor* p : {&running_mean, &running_var, &weight, &bias})
    MG_CHECK(!p->defined() || (p->dim() == 1 && p->size(0) == c), "sync_batch_norm", "per-channel tensor ", p->info(),
             " must be [", c, "] for input ", x_in.info());
  for (const Tensor* p : {&weight, &bias})
    MG_CHECK(!p->defined() || p->dtype() == x_in.dtype(), "sync_batch_norm", "dtype mismatch: input ", x_in.info(),
             ", weight/bias ", p->info());

  Tensor x = x_in.detach().contiguous();
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor mean_t = Tensor::empty({c}, x.dtype()), var_t = Tensor::empty({c}, x.dtype());
  Tensor rstd_t = Tensor::empty({c}, x.dtype());
  const kernels::BnGeom geom{n, c, inner};
  int64_t count = 0;  // M, over every rank
  MG_DISPATCH_FLOAT(x.dtype(), "sync_batch_norm", [&] {
    using T = scalar_t;
    const T* px = x.data<T>();
    // 1. This rank's count n, and per channel its sum, its mean m and M2 = sum((x - m)^2), two-pass.
    const auto n_local = static_cast<double>(n * inner);
    std::vector<double> sum(static_cast<size_t>(c)), mean_local(static_cast<size_t>(c)), m2(static_cast<size_t>(c));
    kernels::bn_channel_sums(px, geom, sum.data());
    for (size_t ch = 0; ch < sum.size(); ++ch) mean_local[ch] = n_local > 0 ? sum[ch] / n_local : 0.0;
    kernels::bn_channel_sq_dev_sums(px, geom, mean_local.data(), m2.data());
    // 2. One allreduce of [sum, M2, n * m^2 per channel, n]: Chan's combination of the ranks' means
    //    and M2s, written as sums. Over all ranks, with N = sum of n and mean = sum / N,
    //      M2 = sum of M2 + (sum of n * m^2 - N * mean^2)
    //    (the spread of the ranks' means; in double, and exactly 0 for one rank, whose mean is the
    //    mean: one process gets batch_norm's bits).
    const auto uc = static_cast<size_t>(c);
    std::vector<double> all(3 * uc + 1);
    for (size_t ch = 0; ch < uc; ++ch)
      all[ch] = sum[ch], all[uc + ch] = m2[ch], all[2 * uc + ch] = n_local * mean_local[ch] * mean_local[ch];
    all.back() = n_local;
    allreduce_checked(*group, all, c, "forward's sums");
    count = std::llround(all.back());
    MG_CHECK(count > 1, "sync_batch_norm", "expected more than 1 value per channel over all ranks, got ", count,
             " (this rank's input ", x_in.info(), ")");
    const auto m_count = static_cast<double>(count);
    std::vector<double> mean(static_cast<size_t>(c)), var(static_cast<size_t>(c));
    for (size_t ch = 0; ch < mean.size(); ++ch) {
      mean[ch] = all[ch] / m_count;
      const double spread = all[2 * uc + ch] - m_count * mean[ch] * mean[ch];
      var[ch] = std::max(0.0, (all[uc + ch] + spread) / m_count);  // biased
    }
    // 3. y = x * scale + shift, with scale = w * rstd, shift = b - mean * scale from batch_norm's own
    //    kernels::bn_affine: the kernel library may be compiled with FMA and this file not, so the
    //    same formula written here could round differently.
    const T* pw = w.defined() ? w.data<T>() : nullptr;
    const T* pb = b.defined() ? b.data<T>() : nullptr;
    T *pm = mean_t.data<T>(), *pv = var_t.data<T>(), *pr = rstd_t.data<T>();
    std::vector<T> scale(static_cast<size_t>(c)), shift(static_cast<size_t>(c));
    for (size_t ch = 0; ch < static_cast<size_t>(c); ++ch) {
      pm[ch] = static_cast<T>(mean[ch]), pv[ch] = static_cast<T>(var[ch]);
      const kernels::BnAffine<T> a = kernels::bn_affine(mean[ch], var[ch], eps, pw, pb, static_cast<int64_t>(ch));
      pr[ch] = a.rstd, scale[ch] = a.scale, shift[ch] = a.shift;
    }
    kernels::bn_normalize(px, geom, scale.data(), shift.data(), y.data<T>());
  });
  if (running_mean.defined() && running_var.defined()) {
    Tensor rm = running_mean, rv = running_var;
    batch_norm_update_stats(rm, rv, mean_t, var_t, count, momentum);  // unbiased with the global count
  }

  const bool has_b = bias.defined();
  record("sync_batch_norm", y, {x_in, weight, bias},
         [x, w, has_b, mean_t, rstd_t, geom, count, group](const Tensor& g_in) {
           Tensor g = g_in.contiguous();
           Tensor gx = Tensor::empty(x.shape(), x.dtype());
           const int64_t c = geom.c;
           // This rank's sum(g) and sum(g * xhat): its dbias and dweight (DistributedDataParallel
           // averages those), and, added over the ranks, the global batch's for dx.
           std::vector<double> db(static_cast<size_t>(c)), dw(static_cast<size_t>(c));
           std::vector<double> sums;
           MG_DISPATCH_FLOAT(x.dtype(), "sync_batch_norm backward", [&] {
             using T = scalar_t;
             const T *px = x.data<T>(), *pg = g.data<T>(), *pm = mean_t.data<T>(), *pr = rstd_t.data<T>();
             const T* pw = w.defined() ? w.data<T>() : nullptr;
             kernels::bn_grad_sums(pg, px, geom, pm, pr, db.data(), dw.data());
             sums = db;
             sums.insert(sums.end(), dw.begin(), dw.end());
             allreduce_checked(*group, sums, c, "backward's sums");
             std::vector<T> k(static_cast<size_t>(c)), mg(static_cast<size_t>(c)), mgx(static_cast<size_t>(c));
             for (size_t ch = 0; ch < static_cast<size_t>(c); ++ch) {
               k[ch] = pw ? pw[ch] * pr[ch] : pr[ch];
               mg[ch] = static_cast<T>(sums[ch] / static_cast<double>(count));
               mgx[ch] = static_cast<T>(sums[static_cast<size_t>(c) + ch] / static_cast<double>(count));
             }
             kernels::bn_input_grad(pg, px, geom, pm, pr, k.data(), mg.data(), mgx.data(), gx.data<T>());
           });
           Tensor gw = w.defined() ? Tensor::from_vector(dw, {c}, x.dtype()) : Tensor();
           Tensor gb = has_b ? Tensor::from_vector(db, {c}, x.dtype()) : Tensor();
           return std::vector<Tensor>{gx, gw, gb};
         },
         {x, w});
  return y;
}

int64_t convert_sync_batchnorm(nn::Module& model, std::shared_ptr<ProcessGroup> group) {
  int64_t converted = 0;
  model.apply([&](nn::Module& m) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&m)) {
      bn->process_group = group;
      ++converted;
    }
  });
  return converted;
}

}  // namespace mg::dist
