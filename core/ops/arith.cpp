// Elementwise arithmetic with broadcasting. Backward of a broadcast operand sums the gradient back
// to that operand's shape (sum_to), which is all broadcasting costs in reverse mode.
#include <algorithm>
#include <utility>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/kernels/elementwise.h"
#include "maxgrad/core/kernels/row_scale.h"
#include "maxgrad/core/ops.h"

namespace mg {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    MG_CHECK(da == db || da == 1 || db == 1, op, "shapes ", shape_str(a), " and ", shape_str(b),
             " cannot be broadcast: dim ", i, " has sizes ", da, " and ", db,
             " (broadcast dims must be equal or 1, aligned from the right)");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {
template <typename F> Tensor binary(const char* op, const Tensor& a, const Tensor& b, F f) {
  MG_CHECK(a.dtype() == b.dtype(), op, "dtype mismatch: ", a.info(), " and ", b.info(),
           " (convert one with .to(dtype))");
  Shape s = broadcast_shapes(a.shape(), b.shape(), op);
  return MG_DISPATCH_FLOAT(a.dtype(), op,
                           [&] { return kernels::map2<scalar_t>(a.detach().expand(s), b.detach().expand(s), f); });
}
}  // namespace

// out = a + b;  da = g, db = g (each summed to its own shape)
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary("add", a, b, [](auto x, auto y) { return x + y; });
  Shape sa = a.shape(), sb = b.shape();
  record("add", out, {a, b}, [sa, sb](const Tensor& g) { return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)}; });
  return out;
}

// out = a - b;  da = g, db = -g
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary("sub", a, b, [](auto x, auto y) { return x - y; });
  Shape sa = a.shape(), sb = b.shape();
  record("sub", out, {a, b}, [sa, sb](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, sa), sum_to(neg(g), sb)};
  });
  return out;
}

// out = a * b;  da = g * b, db = g * a (each summed to its own shape)
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary("mul", a, b, [](auto x, auto y) { return x * y; });
  record("mul", out, {a, b},
         [a, b](const Tensor& g) {
           // one operand a value per row of the other (squeeze-excitation's scale): both in one pass
           if (auto grads = kernels::mul_backward_row_scale(g, a, b)) return std::move(*grads);
           return std::vector<Tensor>{a.requires_grad() ? sum_to(mul(g, b), a.shape()) : Tensor(),
                                      b.requires_grad() ? sum_to(mul(g, a), b.shape()) : Tensor()};
         },
         {a, b});
  return out;
}

// out = a / b;  da = g / b, db = -g * a / b^2
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary("div", a, b, [](auto x, auto y) { return x / y; });
  record("div", out, {a, b},
         [a, b](const Tensor& g) {
           Tensor ga = div(g, b);
           return std::vector<Tensor>{sum_to(ga, a.shape()), sum_to(neg(mul(ga, div(a, b))), b.shape())};
         },
         {a, b});
  return out;
}

// out = a + c;  da = g
Tensor add(const Tensor& a, double c) {
  Tensor out = MG_DISPATCH_FLOAT(a.dtype(), "add", [&] {
    scalar_t s = static_cast<scalar_t>(c);
    return kernels::map1<scalar_t>(a, [s](scalar_t x) { return x + s; });
  });
  record("add_scalar", out, {a}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

// out = a * c;  da = g * c
Tensor mul(const Tensor& a, double c) {
  Tensor out = MG_DISPATCH_FLOAT(a.dtype(), "mul", [&] {
    scalar_t s = static_cast<scalar_t>(c);
    return kernels::map1<scalar_t>(a, [s](scalar_t x) { return x * s; });
  });
  record("mul_scalar", out, {a}, [c](const Tensor& g) { return std::vector<Tensor>{mul(g, c)}; });
  return out;
}

// out = -a;  da = -g
Tensor neg(const Tensor& a) {
  Tensor out =
      MG_DISPATCH_FLOAT(a.dtype(), "neg", [&] { return kernels::map1<scalar_t>(a, [](scalar_t x) { return -x; }); });
  record("neg", out, {a}, [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; });
  return out;
}

}  // namespace mg
