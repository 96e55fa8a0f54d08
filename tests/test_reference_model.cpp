// The two kernel paths (core/kernel_path.h) on a whole model: one MaxViT training step (forward,
// loss, every gradient, the SGD update and the BatchNorm running statistics) run in one process on
// the fast kernels and on the plain reference loops, from the same weights and batch, and compared
// tensor by tensor. In float64 the two agree to rounding; in float32, where the fast path also takes
// its float-only kernels (shifted-row convolution, register depthwise), to the golden cases' tolerance.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "maxgrad/core/kernel_path.h"
#include "examples/common/run_step.h"
#include "helpers.h"

using namespace mg;

namespace {

// The cifar preset made small, with every kind of layer: two MaxViT layers in the first stage,
// stride-2 stages, several heads, stochastic depth off (run_step forces it).
models::MaxVitConfig small_config() {
  models::MaxVitConfig c = models::MaxVitConfig::preset("cifar");
  c.input_h = c.input_w = 16;
  c.stem_channels = 8;
  c.block_channels = {16, 32};
  c.block_layers = {2, 1};
  c.head_dim = 8;
  c.partition_size = 2;
  c.bn = nn::BatchNormOptions().eps(1e-3).momentum(0.1);
  return c;
}

std::map<std::string, Tensor> step_on(KernelPath path, const models::MaxVitConfig& cfg, DType dt,
                                      const nn::NamedTensors& weights, const Tensor& x, const Tensor& y) {
  KernelPathGuard guard(path);
  cli::StepOptions opt;
  opt.steps = 2;
  nn::NamedTensors out = cli::run_step(cfg, dt, weights, x, y, opt);
  return {out.begin(), out.end()};
}

// Worst |a - b| / (|b| + atol_scale * max|b|) over the tensor, as check_step.py measures.
double worst_rel(const Tensor& a, const Tensor& b, double atol_over_rtol) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double scale = 0;
  for (double v : vb) scale = std::max(scale, std::fabs(v));
  if (scale == 0) scale = 1;
  double worst = 0;
  for (size_t i = 0; i < va.size(); ++i)
    worst = std::max(worst, std::fabs(va[i] - vb[i]) / (std::fabs(vb[i]) + atol_over_rtol * scale));
  return worst;
}

double max_abs(const Tensor& a) {
  double m = 0;
  for (double v : a.to_vector()) m = std::max(m, std::fabs(v));
  return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double d = 0;
  for (size_t i = 0; i < va.size(); ++i) d = std::max(d, std::fabs(va[i] - vb[i]));
  return d;
}

void compare_paths(DType dt, double rtol, double atol, double floor) {
  const models::MaxVitConfig cfg = small_config();
  models::MaxVit init(cfg, 3);
  init.to(dt);
  const nn::NamedTensors weights = init.state_dict();
  Generator gen(4);
  const Tensor x = randn({6, 3, 16, 16}, gen, dt);
  const Tensor y = Tensor::from_vector(std::vector<double>{0, 3, 9, 1, 1, 7}, {6}, DType::Int64);

  const auto fast = step_on(KernelPath::fast, cfg, dt, weights, x, y);
  const auto ref = step_on(KernelPath::reference, cfg, dt, weights, x, y);
  REQUIRE(fast.size() == ref.size());
  CHECK(fast.size() > 100);  // logits, loss, every gradient and every state entry
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, t] : ref) {
    INFO(name);
    REQUIRE(fast.count(name));
    const Tensor& f = fast.at(name);
    REQUIRE(f.shape() == t.shape());
    if (!is_floating(t.dtype())) {
      CHECK(f.to_vector() == t.to_vector());
      continue;
    }
    const double r = worst_rel(f, t, atol / rtol);
    if (r > worst && max_abs(t) > 1e3 * floor) worst = r, worst_name = name;  // not a noise entry (below)
    // Some entries are zero in exact arithmetic, so both paths hold rounding noise there and no
    // relative measure applies: a BatchNorm's bias gradient when the next layers are a 1x1
    // convolution and another BatchNorm, which removes any constant added per channel (MBConv's
    // pre_norm -> conv_a), and that second BatchNorm's running mean. They pass within `floor`.
    CHECK_MESSAGE((r <= rtol || max_abs_diff(f, t) <= floor), name, ": fast and reference differ by ", r,
                  " (relative), more than ", rtol, ", and by ", max_abs_diff(f, t), " (absolute), more than ", floor);
  }
  MESSAGE(std::string(dtype_name(dt)), ": worst relative difference ", worst, " in ", worst_name);
}

}  // namespace

TEST_CASE("a MaxViT training step gives the same numbers on both kernel paths, float64") {
  compare_paths(DType::Float64, 1e-9, 1e-12, 1e-15);
}

TEST_CASE("a MaxViT training step gives the same numbers on both kernel paths, float32") {
  compare_paths(DType::Float32, 2e-3, 1e-4, 1e-7);
}

TEST_CASE("MAXGRAD_KERNELS names fast or reference; anything else is an error naming both") {
  CHECK(parse_kernel_path("fast", "test") == KernelPath::fast);
  CHECK(parse_kernel_path("reference", "test") == KernelPath::reference);
  const std::string msg = testing::error_message([] { parse_kernel_path("Reference", "MAXGRAD_KERNELS"); });
  CHECK(msg.find("MAXGRAD_KERNELS") != std::string::npos);
  CHECK(msg.find("'Reference'") != std::string::npos);
  CHECK(msg.find("fast") != std::string::npos);
  CHECK(msg.find("reference") != std::string::npos);
  {
    KernelPathGuard g(KernelPath::reference);
    CHECK(use_reference_kernels());
  }
  CHECK(kernel_path_name(KernelPath::reference) == std::string("reference"));
}
