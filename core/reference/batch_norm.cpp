#include "maxgrad/core/reference/batch_norm.h"

#include <cmath>

namespace mg::reference {

namespace {

// GELU, exact: gelu(z) = z Phi(z), gelu'(z) = Phi(z) + z phi(z), with Phi the standard normal's
// distribution function, Phi(z) = (1 + erf(z / sqrt 2)) / 2, and phi(z) = e^(-z^2/2) / sqrt(2 pi).
double gelu(double z) { return z * 0.5 * (1 + std::erf(z / std::sqrt(2.0))); }
double gelu_grad(double z) {
  return 0.5 * (1 + std::erf(z / std::sqrt(2.0))) + z * std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
}

// Where value i of sample s, channel ch is in an (n, c, inner) array.
int64_t at(const BnGeom& g, int64_t s, int64_t ch, int64_t i) { return (s * g.c + ch) * g.inner + i; }

}  // namespace

template <typename T> void batch_norm_forward(const T* x, const BnGeom& g, bool training, const double* running_mean,
                                              const double* running_var, double eps, const T* w, const T* b, BnAct act,
                                              T* y, T* mean, T* var, T* rstd, T* scale, T* shift) {
  const double count = static_cast<double>(g.n * g.inner);
  for (int64_t ch = 0; ch < g.c; ++ch) {
    double m = 0, v = 0;
    if (training) {
      for (int64_t s = 0; s < g.n; ++s)
        for (int64_t i = 0; i < g.inner; ++i) m += x[at(g, s, ch, i)];
      m /= count;
      for (int64_t s = 0; s < g.n; ++s)
        for (int64_t i = 0; i < g.inner; ++i) {
          const double d = x[at(g, s, ch, i)] - m;
          v += d * d;
        }
      v /= count;  // biased: divided by M, not M - 1
    } else {
      m = running_mean[ch];
      v = running_var[ch];
    }
    const double rs = 1.0 / std::sqrt(v + eps);
    const double wc = w ? w[ch] : 1.0, bc = b ? b[ch] : 0.0;
    mean[ch] = static_cast<T>(m), var[ch] = static_cast<T>(v), rstd[ch] = static_cast<T>(rs);
    scale[ch] = static_cast<T>(wc * rs), shift[ch] = static_cast<T>(bc - m * wc * rs);
    for (int64_t s = 0; s < g.n; ++s)
      for (int64_t i = 0; i < g.inner; ++i) {
        const double xhat = (x[at(g, s, ch, i)] - m) * rs;
        const double z = xhat * wc + bc;
        y[at(g, s, ch, i)] = static_cast<T>(act == BnAct::Gelu ? gelu(z) : z);
      }
  }
}

template <typename T> void batch_norm_backward(const T* gy, const T* x, const BnGeom& g, const T* mean, const T* rstd,
                                               const T* w, const T* b, bool training, BnAct act, T* gx, double* sum_g,
                                               double* sum_gxhat) {
  const double count = static_cast<double>(g.n * g.inner);
  for (int64_t ch = 0; ch < g.c; ++ch) {
    const double m = mean[ch], rs = rstd[ch], wc = w ? w[ch] : 1.0, bc = b ? b[ch] : 0.0;
    auto xhat = [&](int64_t j) { return (x[j] - m) * rs; };
    // the gradient of z = xhat * w + b, the value before GELU
    auto gz = [&](int64_t j) { return act == BnAct::Gelu ? gy[j] * gelu_grad(xhat(j) * wc + bc) : double(gy[j]); };
    double sg = 0, sgx = 0;
    for (int64_t s = 0; s < g.n; ++s)
      for (int64_t i = 0; i < g.inner; ++i) {
        const int64_t j = at(g, s, ch, i);
        sg += gz(j);
        sgx += gz(j) * xhat(j);
      }
    sum_g[ch] = sg, sum_gxhat[ch] = sgx;
    const double mean_g = training ? sg / count : 0.0, mean_gxhat = training ? sgx / count : 0.0;
    for (int64_t s = 0; s < g.n; ++s)
      for (int64_t i = 0; i < g.inner; ++i) {
        const int64_t j = at(g, s, ch, i);
        gx[j] = static_cast<T>(wc * rs * (gz(j) - mean_g - xhat(j) * mean_gxhat));
      }
  }
}

template <typename T> void bn_channel_sums(const T* x, const BnGeom& g, double* sum) {
  for (int64_t ch = 0; ch < g.c; ++ch) {
    double acc = 0;
    for (int64_t s = 0; s < g.n; ++s)
      for (int64_t i = 0; i < g.inner; ++i) acc += x[at(g, s, ch, i)];
    sum[ch] = acc;
  }
}

template <typename T> void bn_channel_sq_dev_sums(const T* x, const BnGeom& g, const double* mean, double* sq) {
  for (int64_t ch = 0; ch < g.c; ++ch) {
    double acc = 0;
    for (int64_t s = 0; s < g.n; ++s)
      for (int64_t i = 0; i < g.inner; ++i) {
        const double d = x[at(g, s, ch, i)] - mean[ch];
        acc += d * d;
      }
    sq[ch] = acc;
  }
}

template <typename T> void bn_normalize(const T* x, const BnGeom& g, const T* scale, const T* shift, T* y, BnAct act) {
  for (int64_t ch = 0; ch < g.c; ++ch)
    for (int64_t s = 0; s < g.n; ++s)
      for (int64_t i = 0; i < g.inner; ++i) {
        const double z = static_cast<double>(x[at(g, s, ch, i)]) * scale[ch] + shift[ch];
        y[at(g, s, ch, i)] = static_cast<T>(act == BnAct::Gelu ? gelu(z) : z);
      }
}

template <typename T> void bn_grad_sums(const T* gy, const T* x, const BnGeom& g, const T* mean, const T* rstd,
                                        double* sum_g, double* sum_gxhat) {
  for (int64_t ch = 0; ch < g.c; ++ch) {
    double a = 0, b = 0;
    for (int64_t s = 0; s < g.n; ++s)
      for (int64_t i = 0; i < g.inner; ++i) {
        const int64_t j = at(g, s, ch, i);
        a += gy[j];
        b += static_cast<double>(gy[j]) * static_cast<double>((x[j] - mean[ch]) * rstd[ch]);
      }
    sum_g[ch] = a, sum_gxhat[ch] = b;
  }
}

template <typename T> void bn_input_grad(const T* gy, const T* x, const BnGeom& g, const T* mean, const T* rstd,
                                         const T* k, const T* mg, const T* mgx, T* gx) {
  for (int64_t ch = 0; ch < g.c; ++ch)
    for (int64_t s = 0; s < g.n; ++s)
      for (int64_t i = 0; i < g.inner; ++i) {
        const int64_t j = at(g, s, ch, i);
        const double xhat = (static_cast<double>(x[j]) - mean[ch]) * rstd[ch];
        gx[j] = static_cast<T>(static_cast<double>(k[ch]) * (gy[j] - mg[ch] - xhat * mgx[ch]));
      }
}

#define MG_INSTANTIATE(T)                                                                                             \
  template void batch_norm_forward<T>(const T*, const BnGeom&, bool, const double*, const double*, double, const T*,  \
                                      const T*, BnAct, T*, T*, T*, T*, T*, T*);                                       \
  template void batch_norm_backward<T>(const T*, const T*, const BnGeom&, const T*, const T*, const T*, const T*,     \
                                       bool, BnAct, T*, double*, double*);                                            \
  template void bn_channel_sums<T>(const T*, const BnGeom&, double*);                                                 \
  template void bn_channel_sq_dev_sums<T>(const T*, const BnGeom&, const double*, double*);                           \
  template void bn_normalize<T>(const T*, const BnGeom&, const T*, const T*, T*, BnAct);                              \
  template void bn_grad_sums<T>(const T*, const T*, const BnGeom&, const T*, const T*, double*, double*);             \
  template void bn_input_grad<T>(const T*, const T*, const BnGeom&, const T*, const T*, const T*, const T*, const T*, \
                                 T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::reference
