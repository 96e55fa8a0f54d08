// gradcheck: compares the analytic gradient of f (from backward) with float64 central differences.
//
// f's output is projected onto a fixed random tensor R (L = sum(f(x) * R)), so one backward gives
// the whole vector-Jacobian product and every input element gets a two-sided difference of L. The
// tolerance |analytic - numeric| <= atol + rtol * |numeric| with rtol 1e-4 catches a 1% error.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"

namespace mg::testing {

struct GradcheckResult {
  bool ok = true;
  std::string report;
};

inline GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                                 double eps = 1e-6, double atol = 1e-7, double rtol = 1e-4) {
  for (Tensor& t : inputs)
    if (t.dtype() == DType::Float64 && t.is_leaf()) t.requires_grad_(true);
  Tensor out = f(inputs);
  Generator gen(1234);
  Tensor r = randn(out.shape(), gen, out.dtype());
  auto project = [&](const Tensor& y) { return sum(mul(y, r)).item(); };
  for (Tensor& t : inputs) t.zero_grad();
  sum(mul(out, r)).backward();

  GradcheckResult res;
  std::ostringstream rep;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& t = inputs[k];
    if (!t.requires_grad()) continue;
    Tensor analytic = t.grad();
    if (!analytic.defined()) analytic = zeros(t.shape(), t.dtype());
    Tensor flat_grad = analytic.contiguous();
    // Perturb the storage element behind each logical index (inputs may be non-contiguous views).
    Shape idx(t.dim(), 0);
    for (int64_t i = 0; i < t.numel(); ++i) {
      int64_t rem = i, off = t.offset();
      for (int64_t d = t.dim() - 1; d >= 0; --d) {
        idx[d] = rem % t.size(d);
        rem /= t.size(d);
        off += idx[d] * t.strides()[d];
      }
      double* p = static_cast<double*>(t.impl().storage->data()) + off;
      const double orig = *p;
      double up, down;
      {
        NoGradGuard ng;
        *p = orig + eps;
        up = project(f(inputs));
        *p = orig - eps;
        down = project(f(inputs));
        *p = orig;
      }
      const double numeric = (up - down) / (2 * eps);
      const double a = flat_grad.to_vector()[static_cast<size_t>(i)];
      if (std::fabs(a - numeric) > atol + rtol * std::fabs(numeric)) {
        if (res.ok)
          rep << "input " << k << " " << t.info() << " element " << i << ": analytic " << a << " vs numeric "
              << numeric;
        res.ok = false;
      }
    }
  }
  res.report = rep.str();
  return res;
}

}  // namespace mg::testing

#define CHECK_GRADCHECK(...)                                 \
  do {                                                       \
    auto gc_result_ = ::mg::testing::gradcheck(__VA_ARGS__); \
    INFO(gc_result_.report);                                 \
    CHECK(gc_result_.ok);                                    \
  } while (0)
