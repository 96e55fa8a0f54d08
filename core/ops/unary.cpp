// Elementwise functions. Each is one forward formula y = f(x) and one backward formula
// dx = g * f'(x), written with x (the input), y (the saved output) and g (the incoming gradient).
// exp, erf and GELU come from `m`, the kernel path's math: vectorisable polynomials for float on the
// fast path (kernels::FastMath), the C library's functions on the reference path (reference::Math).
#include <cmath>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/kernels/elementwise.h"
#include "maxgrad/core/ops.h"

namespace mg {

namespace {
// Fwd: (m, x) -> y.  Bwd: (m, x, y, g) -> dx.
template <typename Fwd, typename Bwd> Tensor unary(const char* name, const Tensor& x, Fwd fwd, Bwd bwd) {
  Tensor y = MG_DISPATCH_FLOAT(x.dtype(), name, [&] { return kernels::map1_math<scalar_t>(x.detach(), fwd); });
  Tensor xd = x.detach(), yd = y.detach();
  record(name, y, {x},
         [xd, yd, bwd, name](const Tensor& g) {  // dx written over g when g is the engine's alone
           return std::vector<Tensor>{MG_DISPATCH_FLOAT(
               g.dtype(), name, [&] { return kernels::map3_math<scalar_t>(xd, yd, g, bwd, /*reuse_c=*/true); })};
         },
         {xd, yd});  // both: exp, tanh, sigmoid, sqrt, rsqrt read y
  return y;
}
}  // namespace

// y = e^x;  dx = g * y
Tensor exp(const Tensor& x) {
  return unary(
      "exp", x, [](auto m, auto v) { return m.exp(v); }, [](auto, auto, auto y, auto g) { return g * y; });
}

// y = ln x;  dx = g / x
Tensor log(const Tensor& x) {
  return unary(
      "log", x, [](auto, auto v) { return std::log(v); }, [](auto, auto x, auto, auto g) { return g / x; });
}

// y = sqrt x;  dx = g / (2 y)
Tensor sqrt(const Tensor& x) {
  return unary(
      "sqrt", x, [](auto, auto v) { return std::sqrt(v); }, [](auto, auto, auto y, auto g) { return g / (2 * y); });
}

// y = 1 / sqrt x;  dx = -g y^3 / 2
Tensor rsqrt(const Tensor& x) {
  return unary(
      "rsqrt", x, [](auto, auto v) { return 1 / std::sqrt(v); },
      [](auto, auto, auto y, auto g) { return -g * y * y * y / 2; });
}

// y = x^p;  dx = g p x^(p-1)
Tensor pow(const Tensor& x, double p) {
  return unary(
      "pow", x, [p](auto, auto v) { return static_cast<decltype(v)>(std::pow(v, p)); },
      [p](auto, auto x, auto, auto g) {
        using T = decltype(x);
        return p == 0 ? T(0) : static_cast<T>(g * p * std::pow(x, p - 1));
      });
}

// y = tanh x;  dx = g (1 - y^2)
Tensor tanh(const Tensor& x) {
  return unary(
      "tanh", x, [](auto, auto v) { return std::tanh(v); }, [](auto, auto, auto y, auto g) { return g * (1 - y * y); });
}

// y = 1 / (1 + e^-x);  dx = g y (1 - y)
Tensor sigmoid(const Tensor& x) {
  return unary(
      "sigmoid", x, [](auto m, auto v) { return 1 / (1 + m.exp(-v)); },
      [](auto, auto, auto y, auto g) { return g * y * (1 - y); });
}

// y = max(x, 0);  dx = g where x > 0
Tensor relu(const Tensor& x) {
  return unary(
      "relu", x, [](auto, auto v) { return v > 0 ? v : decltype(v)(0); },
      [](auto, auto x, auto, auto g) { return x > 0 ? g : decltype(g)(0); });
}

// y = x sigmoid(x);  dx = g s (1 + x (1 - s)),  s = sigmoid(x)
Tensor silu(const Tensor& x) {
  return unary(
      "silu", x, [](auto m, auto v) { return v / (1 + m.exp(-v)); },
      [](auto m, auto x, auto, auto g) {
        auto s = 1 / (1 + m.exp(-x));
        return g * s * (1 + x * (1 - s));
      });
}

// y = x Phi(x) = x/2 (1 + erf(x/sqrt2));  dx = g (Phi(x) + x phi(x)),  phi = e^(-x^2/2)/sqrt(2 pi)
Tensor gelu(const Tensor& x) {
  return unary(
      "gelu", x, [](auto m, auto v) { return m.gelu(v); },
      [](auto m, auto x, auto y, auto g) { return g * m.gelu_grad(x, y); });
}

}  // namespace mg
