// The vectorisable float exp/erf against glibc's, over the whole range the kernels see; GELU's derivative
// both ways (from x, and from x and the forward's output) against the exact one.
#include <doctest/doctest.h>

#include <cmath>
#include <initializer_list>

#include "maxgrad/core/kernels/fast_math.h"

using mg::kernels::fast_erf;
using mg::kernels::fast_exp;

TEST_CASE("fast_exp is within 1e-7 relative of std::exp") {
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 1e-3) {
    const float xf = static_cast<float>(x);
    const double ref = std::exp(static_cast<double>(xf));
    worst = std::fmax(worst, std::fabs(fast_exp(xf) - ref) / ref);
  }
  CHECK(worst < 1.5e-7);
  CHECK(fast_exp(-1000.0f) >= 0.0f);
  CHECK(fast_exp(-1000.0f) < 1e-37f);
  CHECK(fast_exp(0.0f) == 1.0f);
}

TEST_CASE("fast_erf is within 5e-7 absolute of std::erf") {
  double worst = 0;
  for (double x = -10.0; x <= 10.0; x += 1e-4) {
    const float xf = static_cast<float>(x);
    worst = std::fmax(worst, std::fabs(fast_erf(xf) - std::erf(static_cast<double>(xf))));
  }
  CHECK(worst < 5e-7);
  CHECK(fast_erf(0.0f) == 0.0f);
  CHECK(fast_erf(-2.0f) == doctest::Approx(-fast_erf(2.0f)));
}

TEST_CASE("gelu_grad_from_output_ (from x and y = gelu(x)) matches the exact derivative") {
  // Phi(x) + x phi(x) in double as the reference; the float versions from x alone and from (x, y),
  // across 0 (where y / x gives way to the series), the tails, and the threshold 1e-3 itself.
  using mg::kernels::vec_gelu_grad;
  using mg::kernels::vec_gelu_grad_from_output;
  using mg::kernels::vec_gelu;
  double worst_x = 0, worst_xy = 0;
  auto check = [&](float xf) {
    const double x = xf;
    const double ref = 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
    worst_x = std::fmax(worst_x, std::fabs(vec_gelu_grad(xf) - ref));
    worst_xy = std::fmax(worst_xy, std::fabs(vec_gelu_grad_from_output(xf, vec_gelu(xf)) - ref));
  };
  for (double x = -12.0; x <= 12.0; x += 1e-3) check(static_cast<float>(x));
  for (double x = -2e-3; x <= 2e-3; x += 1e-6) check(static_cast<float>(x));
  for (float x : {0.0f, -0.0f, 1e-3f, -1e-3f, 1.0001e-3f, 1e-30f, -1e-30f}) check(x);
  CHECK(worst_x < 1e-6);
  CHECK(worst_xy < 1e-6);
  CHECK(vec_gelu_grad_from_output(0.0f, 0.0f) == 0.5f);
  // float64 keeps the library erf: the same as gelu_grad_
  CHECK(vec_gelu_grad_from_output(0.7, vec_gelu(0.7)) == vec_gelu_grad(0.7));
}
