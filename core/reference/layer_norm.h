// LayerNorm as its definition: one row after another, one value after another, every sum in
// double; single-threaded, no lanes, no blocks of rows. core/kernels/layer_norm.h runs these on the
// reference path (MAXGRAD_KERNELS=reference) and the tests hold the fast loops to them.
//
// Shapes (LnGeom): x, y, gy, gx (rows, c), contiguous; w, b, dw, db (c), w and b may be null (1 and
// 0); mean, rstd (rows). Per row, with xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) (the
// biased variance over the row's c values):
//   y  = xhat * w + b
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = g * w
//   dw = sum over rows of g * xhat,  db = sum over rows of g
#pragma once
#include "maxgrad/core/kernels/layer_norm.h"

namespace mg::reference {

using kernels::LnGeom;

// y, and per row mean and rstd (kept for the backward).
template <typename T>
void layer_norm_forward(const T* x, const LnGeom& g, double eps, const T* w, const T* b, T* y, T* mean, T* rstd);

// gx from gy (dL/dy); dw and db (each may be null) are set, not accumulated. gx may be gy itself:
// each row is read whole before it is written.
template <typename T> void layer_norm_backward(const T* gy, const T* x, const LnGeom& g, const T* mean, const T* rstd,
                                               const T* w, T* gx, double* dw, double* db);

}  // namespace mg::reference
