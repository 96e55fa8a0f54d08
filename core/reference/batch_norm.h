// BatchNorm as its definition: per channel, plain loops over the channel's N * H * W values, one
// sum in double each; single-threaded, no lanes, no blocks of channels. core/kernels/batch_norm.h
// runs these on the reference path (MAXGRAD_KERNELS=reference) and the tests hold the fast loops
// to them.
//
// Shapes (BnGeom): x, y, gy, gx (n, c, inner), contiguous, with inner = H * W; every per-channel
// array has c entries; w, b may be null (1 and 0). Value (s, ch, i) is at (s * c + ch) * inner + i.
// With M = n * inner values per channel and xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps):
//   y  = xhat * w + b                      (batch_norm)
//   y  = gelu(xhat * w + b)                (batch_norm_gelu; gelu(z) = z/2 (1 + erf(z / sqrt 2)))
#pragma once
#include "maxgrad/core/kernels/batch_norm.h"

namespace mg::reference {

using kernels::BnAct;
using kernels::BnGeom;

// Training: mean and the biased var over the channel's M values. Evaluation: mean and var are
// running_mean[ch] and running_var[ch] (null when training). Writes y and, per channel, mean, var,
// rstd, and scale = w * rstd, shift = b - mean * scale (so that y = x * scale + shift before GELU).
template <typename T> void batch_norm_forward(const T* x, const BnGeom& g, bool training, const double* running_mean,
                                              const double* running_var, double eps, const T* w, const T* b, BnAct act,
                                              T* y, T* mean, T* var, T* rstd, T* scale, T* shift);

// gy is dL/dy. With gz = gy (or, with GELU, gz = gy * gelu'(xhat * w + b), xhat recomputed from x):
//   sum_g[ch]     = sum(gz)                  (db)
//   sum_gxhat[ch] = sum(gz * xhat)           (dw)
//   training: gx = w * rstd * (gz - mean(gz) - xhat * mean(gz * xhat))
//   eval:     gx = w * rstd * gz             (the running statistics are constants)
// gx may be gy itself: each value is read just before the same position is written.
template <typename T> void batch_norm_backward(const T* gy, const T* x, const BnGeom& g, const T* mean, const T* rstd,
                                               const T* w, const T* b, bool training, BnAct act, T* gx, double* sum_g,
                                               double* sum_gxhat);

// The per-channel pieces nn/dist/sync_batchnorm.cpp calls one by one (it adds the sums over processes
// in between), each one plain loop:
// sum[ch] = sum of x over the channel
template <typename T> void bn_channel_sums(const T* x, const BnGeom& g, double* sum);
// sq[ch] = sum of (x - mean[ch])^2 over the channel
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

}  // namespace mg::reference
