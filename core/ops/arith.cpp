// Elementwise arithmetic with broadcasting. Backward of a broadcast operand sums the gradient back
// to that operand's shape (sum_to), which is all broadcasting costs in reverse mode.
#include <algorithm>

#include "core/autograd.h"
#include "core/kernels/elementwise.h"
#include "core/kernels/lanes.h"
#include "core/ops.h"
#include "core/parallel.h"

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

namespace {
// Rows of length `len` (> 1) when `small` is `shape` with every dim from some k on made 1 (after
// right-aligning): squeeze-excitation's scale (B, C, 1, 1) against its (B, C, H, W) input. 0 if not.
int64_t row_broadcast_len(const Shape& small, const Shape& shape) {
  if (small.size() > shape.size()) return 0;
  const size_t lead = shape.size() - small.size();
  size_t k = shape.size();  // the first of the trailing dims that small has as 1
  while (k > lead && small[k - 1 - lead] == 1) --k;
  int64_t len = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d < k && (d < lead || small[d - lead] != shape[d])) return 0;
    if (d >= k) len *= shape[d];
  }
  return len > 1 ? len : 0;
}

// The backward of y = s * x with s one value per row of x (rows of `len`): gx = g * s, and
// gs[r] = sum over the row of g * x, in one pass over g and x instead of a product written out
// whole and then summed; gx may be g itself (a row is summed before it is scaled). Each gs[r] is a
// double sum of the float products in kLanes lanes (the order depends on len alone, not on the
// thread count).
template <typename T>
void row_scale_backward(const T* g, const T* x, const T* sv, int64_t rows, int64_t len, T* gx, T* gs) {
  constexpr int64_t kLanes = 16;
  parallel_for(rows, std::max<int64_t>(1, 16384 / len), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T *gr = g + r * len, *xr = x + r * len;
      if (gs) {  // first: gx may be written over g
        double part[kLanes] = {};
        kernels::add_lanes<kLanes>(len, part, [&](int64_t i) { return static_cast<double>(gr[i] * xr[i]); });
        gs[r] = static_cast<T>(kernels::combine_lanes<kLanes>(part));
      }
      if (gx) {
        T* out = gx + r * len;
        const T k = sv[r];
        for (int64_t i = 0; i < len; ++i) out[i] = gr[i] * k;
      }
    }
  });
}
}  // namespace

// out = a * b;  da = g * b, db = g * a (each summed to its own shape)
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary("mul", a, b, [](auto x, auto y) { return x * y; });
  record("mul", out, {a, b},
         [a, b](const Tensor& g) {
           // One operand a value per row of the other (squeeze-excitation's scale): both gradients in one pass.
           const bool a_small = a.shape() != g.shape();
           const Tensor& sm = a_small ? a : b;
           const Tensor& big = a_small ? b : a;
           if (big.shape() == g.shape() && g.is_contiguous() && big.is_contiguous() && sm.is_contiguous())
             if (const int64_t len = row_broadcast_len(sm.shape(), g.shape()); len > 0) {
               // g_big over g when the engine holds g alone (core/autograd.h)
               Tensor g_big = !big.requires_grad() ? Tensor() : sole_owner(g) ? g : Tensor::empty(g.shape(), g.dtype());
               Tensor g_sm = sm.requires_grad() ? Tensor::empty(sm.shape(), g.dtype()) : Tensor();
               MG_DISPATCH_FLOAT(g.dtype(), "mul", [&] {
                 row_scale_backward<scalar_t>(g.data<scalar_t>(), big.data<scalar_t>(), sm.data<scalar_t>(), sm.numel(),
                                              len, g_big.defined() ? g_big.data<scalar_t>() : nullptr,
                                              g_sm.defined() ? g_sm.data<scalar_t>() : nullptr);
               });
               return a_small ? std::vector<Tensor>{g_sm, g_big} : std::vector<Tensor>{g_big, g_sm};
             }
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
