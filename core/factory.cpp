#include "maxgrad/core/factory.h"

#include <cmath>

namespace mg {

Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }

Tensor arange(int64_t end, DType dtype) { return arange(0.0, static_cast<double>(end), 1.0, dtype); }

Tensor arange(double start, double end, double step, DType dtype) {
  MG_CHECK(step != 0, "arange", "step must be non-zero");
  int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((end - start) / step)));
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i) * step;
  return Tensor::from_vector(v, {n}, dtype);
}

namespace {
// Draws are sequential on purpose: one generator, one order, the same numbers on any thread count.
template <typename Draw> Tensor fill_random(const Shape& shape, DType dtype, Draw draw) {
  Tensor t = Tensor::empty(shape, dtype);
  MG_DISPATCH_FLOAT(dtype, "random", [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<scalar_t>(draw());
  });
  return t;
}
}  // namespace

Tensor rand(const Shape& shape, Generator& gen, DType dtype) {
  return fill_random(shape, dtype, [&] { return gen.uniform(); });
}
Tensor randn(const Shape& shape, Generator& gen, DType dtype) {
  return fill_random(shape, dtype, [&] { return gen.normal(); });
}
Tensor normal(const Shape& shape, double mean, double std, Generator& gen, DType dtype) {
  return fill_random(shape, dtype, [&] { return mean + std * gen.normal(); });
}
Tensor trunc_normal(const Shape& shape, double mean, double std, Generator& gen, double a, double b, DType dtype) {
  MG_CHECK(a < b && (a - mean) / std < 6 && (b - mean) / std > -6, "trunc_normal", "the interval [", a, ", ", b,
           "] must overlap N(", mean, ", ", std, ") meaningfully");
  return fill_random(shape, dtype, [&] {
    for (;;) {
      double v = mean + std * gen.normal();
      if (v >= a && v <= b) return v;
    }
  });
}

}  // namespace mg
