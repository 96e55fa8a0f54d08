// LayerNorm over the last dim C, fused. With xhat = (x - mean) * rstd (biased variance):
//   y  = xhat * w + b
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = g * w
//   dw = sum over rows of g * xhat,  db = sum over rows of g
#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/parallel.h"

namespace mg {

namespace {
constexpr int64_t kRowsPerPart = 256;  // fixed partial-sum blocks for dw, db: thread-count independent
}

Tensor layer_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias, double eps) {
  MG_CHECK(x_in.dim() >= 1, "layer_norm", "input must have at least 1 dim, got ", x_in.info());
  const int64_t c = x_in.size(-1);
  for (const Tensor* p : {&weight, &bias}) {
    MG_CHECK(!p->defined() || (p->dim() == 1 && p->size(0) == c), "layer_norm", "weight/bias ", p->info(),
             " must be [", c, "] to match the last dim of ", x_in.info());
    MG_CHECK(!p->defined() || p->dtype() == x_in.dtype(), "layer_norm", "dtype mismatch: input ", x_in.info(),
             ", weight/bias ", p->info());
  }
  Tensor x = x_in.detach().contiguous();
  // The kernels index w[i], b[i]: a strided view (a slice of a bigger parameter) must be made dense.
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  const int64_t rows = x.numel() / std::max<int64_t>(c, 1);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor rstd = Tensor::empty({rows}, x.dtype()), mu = Tensor::empty({rows}, x.dtype());
  MG_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
    using T = scalar_t;
    const T* px = x.data<T>();
    const T* pw = w.defined() ? w.data<T>() : nullptr;
    const T* pb = b.defined() ? b.data<T>() : nullptr;
    T *py = y.data<T>(), *pr = rstd.data<T>(), *pm = mu.data<T>();
    parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = px + r * c;
        double m = 0, v = 0;
        for (int64_t i = 0; i < c; ++i) m += xr[i];
        m /= static_cast<double>(c);
        for (int64_t i = 0; i < c; ++i) v += (xr[i] - m) * (xr[i] - m);
        v /= static_cast<double>(c);
        const T rs = static_cast<T>(1 / std::sqrt(v + eps)), mt = static_cast<T>(m);
        pr[r] = rs, pm[r] = mt;
        T* yr = py + r * c;
        for (int64_t i = 0; i < c; ++i) {
          T xh = (xr[i] - mt) * rs;
          yr[i] = (pw ? xh * pw[i] : xh) + (pb ? pb[i] : T(0));
        }
      }
    });
  });
  const bool has_b = bias.defined();
  record("layer_norm", y, {x_in, weight, bias}, [x, w, has_b, mu, rstd, rows, c](const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    Tensor gx = Tensor::empty(x.shape(), x.dtype());
    const int64_t parts = (rows + kRowsPerPart - 1) / kRowsPerPart;
    std::vector<double> pdw(static_cast<size_t>(parts * c), 0.0), pdb(static_cast<size_t>(parts * c), 0.0);
    MG_DISPATCH_FLOAT(x.dtype(), "layer_norm backward", [&] {
      using T = scalar_t;
      const T *px = x.data<T>(), *pg = g.data<T>(), *pr = rstd.data<T>(), *pm = mu.data<T>();
      const T* pw = w.defined() ? w.data<T>() : nullptr;
      T* pgx = gx.data<T>();
      parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
        std::vector<T> xh(static_cast<size_t>(c)), dxh(static_cast<size_t>(c));
        for (int64_t p = p0; p < p1; ++p) {
          double* dw = pdw.data() + p * c;
          double* db = pdb.data() + p * c;
          for (int64_t r = p * kRowsPerPart; r < std::min(rows, (p + 1) * kRowsPerPart); ++r) {
            const T *xr = px + r * c, *gr = pg + r * c;
            double s1 = 0, s2 = 0;  // mean(dxhat), mean(dxhat * xhat), times c
            for (int64_t i = 0; i < c; ++i) {
              xh[i] = (xr[i] - pm[r]) * pr[r];
              dxh[i] = pw ? gr[i] * pw[i] : gr[i];
              s1 += dxh[i];
              s2 += dxh[i] * xh[i];
              dw[i] += gr[i] * xh[i];
              db[i] += gr[i];
            }
            const T m1 = static_cast<T>(s1 / static_cast<double>(c)), m2 = static_cast<T>(s2 / static_cast<double>(c));
            T* gxr = pgx + r * c;
            for (int64_t i = 0; i < c; ++i) gxr[i] = pr[r] * (dxh[i] - m1 - xh[i] * m2);
          }
        }
      });
    });
    Tensor gw, gb;
    if (w.defined() || has_b) {
      std::vector<double> dw(static_cast<size_t>(c), 0.0), db(static_cast<size_t>(c), 0.0);
      for (int64_t p = 0; p < parts; ++p)
        for (int64_t i = 0; i < c; ++i) dw[i] += pdw[p * c + i], db[i] += pdb[p * c + i];
      if (w.defined()) gw = Tensor::from_vector(dw, {c}, x.dtype());
      if (has_b) gb = Tensor::from_vector(db, {c}, x.dtype());
    }
    return std::vector<Tensor>{gx, gw, gb};
  }, {x, w});
  return y;
}

}  // namespace mg
