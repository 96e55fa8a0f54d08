// The vectorisable float exp/erf against glibc's, over the whole range the kernels see.
#include <doctest/doctest.h>

#include <cmath>

#include "core/kernels/fast_math.h"

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
