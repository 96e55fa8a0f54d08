// exercises: the checks of the teaching pages' exercises (docs/autograd.md, docs/batchnorm.md).
// Each prints what the engine computes; the page asks you to predict it first.
//
//   exercises x2-plus-x X      x.grad of y = x * x + x at x = X
//   exercises no-sum-to        an op whose backward forgets sum_to for its broadcast input
//   exercises bn-two-steps     a BatchNorm2d's running statistics after two training batches
#include <maxgrad/maxgrad.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "examples/common/flags.h"

using namespace mg;

namespace {

// y = x * x + x. x is used three times: twice by mul, once by add.
void x2_plus_x(double value) {
  Tensor x = Tensor::from_vector({value}, {}, DType::Float64).requires_grad_();
  Tensor y = add(mul(x, x), x);
  y.backward();
  std::printf("y = %g, x.grad = %g\n", y.item(), x.grad().item());
}

// out = a + b with b (3) broadcast over a (2, 3), recorded with a backward that hands b the whole
// (2, 3) gradient instead of summing it back to b's shape.
void no_sum_to() {
  Tensor a = ones({2, 3}).requires_grad_(), b = ones({3}).requires_grad_();
  Tensor out;
  {
    NoGradGuard no_grad;  // compute the value only; the op records itself below
    out = add(a, b);
  }
  record("add_without_sum_to", out, {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  try {
    sum(out).backward();
    std::printf("no error: the engine accepted a gradient of the wrong shape\n");
  } catch (const Error& e) {
    std::printf("%s\n", e.what());
  }
}

// One channel, momentum 0.1 (PyTorch's default), two training batches of four values each.
void bn_two_steps() {
  nn::BatchNorm2d bn(1, nn::BatchNormOptions().momentum(0.1));
  bn.to(DType::Float64);
  bn.train();
  for (const std::vector<double>& batch : {std::vector<double>{1, 2, 3, 4}, std::vector<double>{2, 4, 6, 8}}) {
    bn(Tensor::from_vector(batch, {4, 1, 1, 1}, DType::Float64));
    std::printf("after a batch of %g %g %g %g: running_mean %.6g, running_var %.6g\n", batch[0], batch[1], batch[2],
                batch[3], bn.running_mean.item(), bn.running_var.item());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> what;
  cli::Flags flags("exercises", "x2-plus-x X | no-sum-to | bn-two-steps");
  flags.add_positional("EXERCISE", "x2-plus-x X, no-sum-to or bn-two-steps", &what);
  flags.parse_or_exit(argc, argv);
  char* end = nullptr;
  if (what.size() == 2 && what[0] == "x2-plus-x" && (std::strtod(what[1].c_str(), &end), *end == '\0')) {
    x2_plus_x(std::strtod(what[1].c_str(), nullptr));
  } else if (what == std::vector<std::string>{"no-sum-to"}) {
    no_sum_to();
  } else if (what == std::vector<std::string>{"bn-two-steps"}) {
    bn_two_steps();
  } else {
    // what does not fit: no exercise, an unknown one, X missing or malformed, one word too many
    std::string why = "an exercise is required";
    if (!what.empty() && what[0] != "x2-plus-x") why = "unexpected argument '" + what[0] + "'";
    if (!what.empty() && what[0] == "x2-plus-x")
      why = what.size() == 1 ? "x2-plus-x needs a number X"
                             : "unexpected argument '" + what[std::min<size_t>(what.size() - 1, 2)] + "'";
    std::fprintf(stderr, "exercises: %s\n\n%s", why.c_str(), flags.usage().c_str());
    return 2;
  }
  return 0;
}
