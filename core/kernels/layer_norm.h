// LayerNorm's loops over x (rows, C), normalising each row, for core/ops/layer_norm.cpp.
// With xhat = (x - mean) * rstd (biased variance, both per row):
//   y  = xhat * w + b
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = g * w
//   dw = sum over rows of g * xhat,  db = sum over rows of g
// The row sums are in double with 8 lanes (core/kernels/lanes.h), so they vectorise; dw and db are
// summed per fixed block of kRowsPerPart rows and the blocks added in order, so no result depends on
// the thread count. On the reference path (core/kernel_path.h) both entry points run
// core/reference/layer_norm.h's plain loops instead, which sum one value after another; the tests
// compare the two.
#pragma once
#include <cstdint>

namespace mg::kernels {

struct LnGeom {
  int64_t rows, c;
};
constexpr int64_t kLnRowsPerPart = 256;

// y, and per row mean and rstd (kept for the backward). w, b may be null.
template <typename T>
void ln_forward(const T* x, const LnGeom& g, double eps, const T* w, const T* b, T* y, T* mean, T* rstd);
// gx; dw and db (C each, may be null) are set, not accumulated. gx may be gy itself (a row is read
// before it is written).
template <typename T> void ln_backward(const T* gy, const T* x, const LnGeom& g, const T* mean, const T* rstd,
                                       const T* w, T* gx, double* dw, double* db);

}  // namespace mg::kernels
