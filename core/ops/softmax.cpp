// softmax and log_softmax along one dim, max-subtracted for stability.
// softmax backward:     dx = y * (g - sum(g * y))
// log_softmax backward: dx = g - exp(y) * sum(g)
#include <cmath>

#include "core/autograd.h"
#include "core/kernels/fast_math.h"
#include "core/ops.h"
#include "core/parallel.h"

namespace mg {

namespace {
// Calls row(ptr, n) on every row along the last dim of a contiguous (rows, n) tensor, in parallel.
template <typename T, typename F> void for_rows(T* p, int64_t rows, int64_t n, F row) {
  parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row(p + r * n, r);
  });
}

// The kernels work on the last dim; any other dim is moved there and back (transpose views).
Tensor last_dim_contiguous(const Tensor& x, int64_t dim) { return x.transpose(dim, -1).contiguous(); }

Tensor softmax_last(const Tensor& x, bool log) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1);
  MG_DISPATCH_FLOAT(x.dtype(), "softmax", [&] {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    for_rows(py, rows, n, [&](scalar_t* out, int64_t r) {
      const scalar_t* in = px + r * n;
      scalar_t m = in[0];
      for (int64_t i = 1; i < n; ++i) m = std::max(m, in[i]);
      scalar_t s = 0;
      for (int64_t i = 0; i < n; ++i) s += (out[i] = kernels::exp_(in[i] - m));
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
    for_rows(gx.data<scalar_t>(), rows, n, [&](scalar_t* out, int64_t r) {
      const scalar_t *yr = py + r * n, *gr = pg + r * n;
      scalar_t s = 0;
      if (log) {
        for (int64_t i = 0; i < n; ++i) s += gr[i];
        for (int64_t i = 0; i < n; ++i) out[i] = gr[i] - std::exp(yr[i]) * s;
      } else {
        for (int64_t i = 0; i < n; ++i) s += gr[i] * yr[i];
        for (int64_t i = 0; i < n; ++i) out[i] = yr[i] * (gr[i] - s);
      }
    });
  });
  return gx;
}

Tensor softmax_impl(const char* name, const Tensor& x, int64_t dim, bool log) {
  dim = wrap_dim(dim, x.dim(), name);
  Tensor y = softmax_last(last_dim_contiguous(x.detach(), dim), log).transpose(dim, -1).detach();
  Tensor saved = y.detach();  // a second handle: the node must not own the tensor that owns the node
  record(name, y, {x},
         [saved, dim, log](const Tensor& g) {
           Tensor yl = last_dim_contiguous(saved, dim), gl = last_dim_contiguous(g, dim);
           return std::vector<Tensor>{softmax_backward_last(yl, gl, log).transpose(dim, -1).contiguous()};
         },
         {saved});
  return y;
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl("log_softmax", x, dim, true); }

}  // namespace mg
