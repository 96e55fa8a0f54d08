// Dropout and drop-path (stochastic depth). Both multiply by a random mask scaled by 1/(1-p), so
// the expected value is unchanged, and backward multiplies the gradient by the same mask.
// Masks are drawn sequentially from the caller's Generator: same seed, same mask, any thread count.
#include "core/autograd.h"
#include "core/generator.h"
#include "core/ops.h"

namespace mg {

namespace {
Tensor masked(const char* name, const Tensor& x, const Tensor& mask) {
  Tensor y = mul(x.detach(), mask);
  record(name, y, {x}, [mask](const Tensor& g) { return std::vector<Tensor>{mul(g, mask)}; });
  return y;
}

// A (shape) mask of 0 and 1/(1-p), each entry kept with probability 1 - p.
Tensor keep_mask(const Shape& shape, double p, DType dt, Generator& gen) {
  Tensor m = Tensor::empty(shape, dt);
  const double keep = 1.0 - p, scale = keep > 0 ? 1.0 / keep : 0.0;
  MG_DISPATCH_FLOAT(dt, "dropout", [&] {
    scalar_t* pm = m.data<scalar_t>();
    for (int64_t i = 0, n = m.numel(); i < n; ++i) pm[i] = static_cast<scalar_t>(gen.uniform() < keep ? scale : 0.0);
  });
  return m;
}
}  // namespace

// y = x * mask, mask elementwise
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  MG_CHECK(p >= 0 && p <= 1, "dropout", "probability must be in [0, 1], got ", p);
  if (!training || p == 0) return x;
  return masked("dropout", x, keep_mask(x.shape(), p, x.dtype(), gen));
}

// y = x * mask, one mask value per sample (dim 0), broadcast over the rest ("row" mode)
Tensor drop_path(const Tensor& x, double p, bool training, Generator& gen) {
  MG_CHECK(p >= 0 && p <= 1, "drop_path", "probability must be in [0, 1], got ", p);
  if (!training || p == 0) return x;
  Shape s(x.dim(), 1);
  s[0] = x.size(0);
  return masked("drop_path", x, keep_mask(s, p, x.dtype(), gen));
}

}  // namespace mg
