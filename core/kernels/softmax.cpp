#include "maxgrad/core/kernels/softmax.h"

#include <algorithm>
#include <cmath>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/fast_math.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/reference/softmax.h"

namespace mg::kernels {

namespace {
// Calls row(ptr, r) on every row r of a contiguous (rows, n) tensor, in parallel.
template <typename T, typename F> void for_rows(T* p, int64_t rows, int64_t n, F row) {
  parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row(p + r * n, r);
  });
}
}  // namespace

Tensor softmax_last(const Tensor& x, bool log) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1);
  MG_DISPATCH_FLOAT(x.dtype(), "softmax", [&] {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    if (use_reference_kernels()) return reference::softmax(px, rows, n, log, py);
    for_rows(py, rows, n, [&](scalar_t* out, int64_t r) {
      const scalar_t* in = px + r * n;
      scalar_t m = in[0];
      for (int64_t i = 1; i < n; ++i) m = std::max(m, in[i]);
      scalar_t s = 0;
      for (int64_t i = 0; i < n; ++i) s += (out[i] = vec_exp(in[i] - m));
      if (log) {
        scalar_t ls = std::log(s);
        for (int64_t i = 0; i < n; ++i) out[i] = in[i] - m - ls;
      } else {
        for (int64_t i = 0; i < n; ++i) out[i] /= s;
      }
    });
  });
  return y;
}

Tensor softmax_backward_last(const Tensor& y, const Tensor& g, bool log) {
  Tensor gx = Tensor::empty(y.shape(), y.dtype());
  const int64_t n = y.size(-1), rows = y.numel() / std::max<int64_t>(n, 1);
  MG_DISPATCH_FLOAT(y.dtype(), "softmax backward", [&] {
    const scalar_t* py = y.data<scalar_t>();
    const scalar_t* pg = g.data<scalar_t>();
    if (use_reference_kernels()) return reference::softmax_backward(py, pg, rows, n, log, gx.data<scalar_t>());
    for_rows(gx.data<scalar_t>(), rows, n, [&](scalar_t* out, int64_t r) {
      const scalar_t *yr = py + r * n, *gr = pg + r * n;
      scalar_t s = 0;
      if (log) {
        for (int64_t i = 0; i < n; ++i) s += gr[i];
        for (int64_t i = 0; i < n; ++i) out[i] = gr[i] - vec_exp(yr[i]) * s;
      } else {
        for (int64_t i = 0; i < n; ++i) s += gr[i] * yr[i];
        for (int64_t i = 0; i < n; ++i) out[i] = yr[i] * (gr[i] - s);
      }
    });
  });
  return gx;
}

}  // namespace mg::kernels
