// BatchNorm's loops over x (N, C, M): every per-channel sum, the normalisation and the input
// gradient, for core/ops/batch_norm.cpp (and nn/dist/sync_batchnorm.cpp, which takes the same sums over
// several processes, so one process gives the same bits as batch_norm on the fast path).
//
// The sums are over N * M values per channel, in double. Summed one value after another, as the
// reference versions (core/reference/batch_norm.h) do, the loop cannot be vectorised: every add
// waits for the one before. The fast versions keep 16 partial sums instead (core/kernels/lanes.h),
// which the compiler turns into SIMD adds, and add them up in a fixed order at the end: the result
// depends on the sizes only, never on the thread count, and is as accurate as the sequential sum.
// Channels run in parallel. On the reference path (core/kernel_path.h), bn_forward, bn_backward and
// the pieces nn/dist/sync_batchnorm.cpp calls run core/reference/batch_norm.h's plain loops instead.
#pragma once
#include <cstdint>

namespace mg::kernels {

struct BnGeom {
  int64_t n, c, inner;  // x is (n, c, inner), contiguous
};

// The per-channel constants of y = x * scale + shift from a mean and (biased) variance:
// rstd = 1 / sqrt(var + eps), scale = w * rstd, shift = b - mean * scale (w, b may be null).
template <typename T> struct BnAffine { T rstd, scale, shift; };
template <typename T> BnAffine<T> bn_affine(double mean, double var, double eps, const T* w, const T* b, int64_t ch);

// What follows the normalisation: nothing, or GELU (batch_norm_gelu: y = gelu(x * scale + shift),
// MaxViT's Conv2dNormActivation, without writing and re-reading the normalised tensor).
enum class BnAct { None, Gelu };

// The forward in one call: training (bn_forward_training) or evaluation, where the statistics are
// running_mean and running_var (c values each, in double; null when training): per channel
// mean[ch] = running_mean[ch], var[ch] = running_var[ch], rstd, scale, shift as bn_affine, then
// bn_normalize.
template <typename T> void bn_forward(const T* x, const BnGeom& g, bool training, const double* running_mean,
                                      const double* running_var, double eps, const T* w, const T* b, BnAct act, T* y,
                                      T* mean, T* var, T* rstd, T* scale, T* shift);
// Training forward in one call, a block of channels at a time (one channel when its rows are long), so
// that the block's values are still in cache for the second and third pass (mean, squared deviations,
// normalisation); the same arithmetic as the separate kernels below, channel for channel. Writes y and the per-channel
// mean, biased variance, rstd, scale, shift.
template <typename T> void bn_forward_training(const T* x, const BnGeom& g, double eps, const T* w, const T* b,
                                               BnAct act, T* y, T* mean, T* var, T* rstd, T* scale, T* shift);
// Backward in one call, by the same blocks of channels (the sums, then the input gradient): sum_g and sum_gxhat
// as bn_grad_sums; gx as bn_input_grad with k = w * rstd and, when training, mg = sum_g / count,
// mgx = sum_gxhat / count (zero in evaluation mode, where the statistics are constants).
// With BnAct::Gelu, gy is the gradient of gelu's output: the gradient of the normalised value,
// gy * gelu'(x * scale + shift), is formed on the fly (in gx, then overwritten); the reference path
// forms it from xhat * w + b (b may be null). gx may be gy itself.
template <typename T> void bn_backward(const T* gy, const T* x, const BnGeom& g, const T* mean, const T* rstd,
                                       const T* w, const T* b, bool training, BnAct act, const T* scale, const T* shift,
                                       T* gx, double* sum_g, double* sum_gxhat);

// sum[ch] = sum of x over the channel
template <typename T> void bn_channel_sums(const T* x, const BnGeom& g, double* sum);
// sq[ch] = sum of (x - mean[ch])^2 over the channel (the difference taken in double)
template <typename T> void bn_channel_sq_dev_sums(const T* x, const BnGeom& g, const double* mean, double* sq);
// y = x * scale[ch] + shift[ch] (then GELU with BnAct::Gelu)
template <typename T>
void bn_normalize(const T* x, const BnGeom& g, const T* scale, const T* shift, T* y, BnAct act = BnAct::None);
// sum_g[ch] = sum of gy, sum_gxhat[ch] = sum of gy * xhat with xhat = (x - mean[ch]) * rstd[ch]
template <typename T> void bn_grad_sums(const T* gy, const T* x, const BnGeom& g, const T* mean, const T* rstd,
                                        double* sum_g, double* sum_gxhat);
// gx = k[ch] * (gy - mg[ch] - (x - mean[ch]) * rstd[ch] * mgx[ch])
template <typename T> void bn_input_grad(const T* gy, const T* x, const BnGeom& g, const T* mean, const T* rstd,
                                         const T* k, const T* mg, const T* mgx, T* gx);

}  // namespace mg::kernels
