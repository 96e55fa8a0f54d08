// Elementwise functions. Each is one forward formula y = f(x) and one backward formula
// dx = g * f'(x), written with x (the input), y (the saved output) and g (the incoming gradient).
#include <cmath>

#include "core/autograd.h"
#include "core/kernels/elementwise.h"
#include "core/kernels/fast_math.h"
#include "core/ops.h"

namespace mg {

using kernels::erf_;
using kernels::exp_;

namespace {
// Fwd: x -> y.  Bwd: (x, y, g) -> dx.
template <typename Fwd, typename Bwd> Tensor unary(const char* name, const Tensor& x, Fwd fwd, Bwd bwd) {
  Tensor y = MG_DISPATCH_FLOAT(x.dtype(), name, [&] { return kernels::map1<scalar_t>(x.detach(), fwd); });
  Tensor xd = x.detach(), yd = y.detach();
  record(name, y, {x},
         [xd, yd, bwd, name](const Tensor& g) {  // dx written over g when g is the engine's alone
           return std::vector<Tensor>{MG_DISPATCH_FLOAT(
               g.dtype(), name, [&] { return kernels::map3<scalar_t>(xd, yd, g, bwd, /*reuse_c=*/true); })};
         },
         {xd, yd});  // both: exp, tanh, sigmoid, sqrt, rsqrt read y
  return y;
}
}  // namespace

// y = e^x;  dx = g * y
Tensor exp(const Tensor& x) {
  return unary(
      "exp", x, [](auto v) { return exp_(v); }, [](auto, auto y, auto g) { return g * y; });
}

// y = ln x;  dx = g / x
Tensor log(const Tensor& x) {
  return unary(
      "log", x, [](auto v) { return std::log(v); }, [](auto x, auto, auto g) { return g / x; });
}

// y = sqrt x;  dx = g / (2 y)
Tensor sqrt(const Tensor& x) {
  return unary(
      "sqrt", x, [](auto v) { return std::sqrt(v); }, [](auto, auto y, auto g) { return g / (2 * y); });
}

// y = 1 / sqrt x;  dx = -g y^3 / 2
Tensor rsqrt(const Tensor& x) {
  return unary(
      "rsqrt", x, [](auto v) { return 1 / std::sqrt(v); }, [](auto, auto y, auto g) { return -g * y * y * y / 2; });
}

// y = x^p;  dx = g p x^(p-1)
Tensor pow(const Tensor& x, double p) {
  return unary(
      "pow", x, [p](auto v) { return static_cast<decltype(v)>(std::pow(v, p)); },
      [p](auto x, auto, auto g) {
        using T = decltype(x);
        return p == 0 ? T(0) : static_cast<T>(g * p * std::pow(x, p - 1));
      });
}

// y = tanh x;  dx = g (1 - y^2)
Tensor tanh(const Tensor& x) {
  return unary(
      "tanh", x, [](auto v) { return std::tanh(v); }, [](auto, auto y, auto g) { return g * (1 - y * y); });
}

// y = 1 / (1 + e^-x);  dx = g y (1 - y)
Tensor sigmoid(const Tensor& x) {
  return unary(
      "sigmoid", x, [](auto v) { return 1 / (1 + exp_(-v)); }, [](auto, auto y, auto g) { return g * y * (1 - y); });
}

// y = max(x, 0);  dx = g where x > 0
Tensor relu(const Tensor& x) {
  return unary(
      "relu", x, [](auto v) { return v > 0 ? v : decltype(v)(0); },
      [](auto x, auto, auto g) { return x > 0 ? g : decltype(g)(0); });
}

// y = x sigmoid(x);  dx = g s (1 + x (1 - s)),  s = sigmoid(x)
Tensor silu(const Tensor& x) {
  return unary(
      "silu", x, [](auto v) { return v / (1 + exp_(-v)); },
      [](auto x, auto, auto g) {
        auto s = 1 / (1 + exp_(-x));
        return g * s * (1 + x * (1 - s));
      });
}

// y = x Phi(x) = x/2 (1 + erf(x/sqrt2));  dx = g (Phi(x) + x phi(x)),  phi = e^(-x^2/2)/sqrt(2 pi)
// (gelu_ and gelu_grad_ in core/kernels/fast_math.h)
Tensor gelu(const Tensor& x) {
  return unary(
      "gelu", x, [](auto v) { return kernels::gelu_(v); },
      [](auto x, auto y, auto g) { return g * kernels::gelu_grad_from_output_(x, y); });
}

}  // namespace mg
