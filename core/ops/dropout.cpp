// Dropout and drop-path (stochastic depth). Both multiply by a random mask scaled by 1/(1-p), so
// the expected value is unchanged, and backward multiplies the gradient by the same mask.
// Masks are drawn sequentially from the caller's Generator: same seed, same mask, any thread count.
#include "maxgrad/core/kernels/dropout.h"

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/generator.h"
#include "maxgrad/core/ops.h"

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

// y = x + drop_path(f): a residual connection with stochastic depth, in one pass (y = x + m[s] * f with
// m[s] the sample's mask value) instead of the masked branch written out and then added. The mask is
// drawn as drop_path draws it, so the same seed drops the same samples. dx = g (passed through),
// df = g * m[s].
Tensor add_drop_path(const Tensor& x, const Tensor& f, double p, bool training, Generator& gen) {
  MG_CHECK(p >= 0 && p <= 1, "add_drop_path", "probability must be in [0, 1], got ", p);
  if (!training || p == 0) return add(x, f);
  MG_CHECK(x.dtype() == f.dtype(), "add_drop_path", "dtype mismatch: residual ", x.info(), ", branch ", f.info());
  if (x.shape() != f.shape() || x.dim() == 0 || x.numel() == 0 || !x.is_contiguous() || !f.is_contiguous())
    return add(x, drop_path(f, p, training, gen));  // broadcasting, strided or empty: the two ops
  Shape s(x.dim(), 1);
  s[0] = x.size(0);
  Tensor mask = keep_mask(s, p, x.dtype(), gen);
  Tensor y = kernels::add_masked_per_sample(x, f, mask);
  record("add_drop_path", y, {x, f}, [mask](const Tensor& g) { return std::vector<Tensor>{g, mul(g, mask)}; });
  return y;
}

}  // namespace mg
