// Model EMA (nn/ema.h) against timm's ModelEmaV3 restated in tests/golden/recipe/make_recipe.py
// (tests/golden/recipe/ema.safetensors): the decay curve, six updates of a conv + BatchNorm + linear
// model's state in float32 and float64 (warm-up, fixed decay with and without a step, exclude_buffers,
// update_after_step with min_decay), num_batches_tracked copied; and EmaSwap, checkpoints and errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>

#include "helpers.h"
#include "maxgrad/nn/batchnorm.h"
#include "maxgrad/nn/ema.h"
#include "maxgrad/nn/layers.h"
#include "maxgrad/nn/serialize/checkpoint.h"
#include "maxgrad/nn/serialize/serialize.h"
#include "temp_dir.h"

using namespace mg;
using mg::testing::bitwise_equal;
using nn::ModelEma;
using nn::ModelEmaOptions;
using nn::NamedTensors;

namespace {

std::map<std::string, Tensor> fixture(const std::string& file) { return testing::recipe_fixture(file); }

// The state of make_recipe.py's Tiny: conv.{weight,bias}, bn.{weight,bias,running_mean,running_var,
// num_batches_tracked}, fc.{weight,bias}. Only the state matters; forward is the identity.
struct Tiny : nn::Module {
  explicit Tiny(Generator& gen) {
    register_module("conv", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(2, 3, 3), gen));
    register_module("bn", std::make_shared<nn::BatchNorm2d>(3));
    register_module("fc", std::make_shared<nn::Linear>(3, 4, true, gen));
  }
  Tensor forward(const Tensor& x) override { return x; }
};

NamedTensors step_state(std::map<std::string, Tensor>& g, const std::string& prefix, const nn::Module& like) {
  NamedTensors s;
  for (const auto& [name, t] : like.state_dict()) s.emplace_back(name, g.at(prefix + name));
  return s;
}

ModelEmaOptions config(const std::string& name) {
  if (name == "warmup") return ModelEmaOptions().decay(0.9998).use_warmup(true);
  if (name == "plain") return ModelEmaOptions().decay(0.9);
  if (name == "no_buffers") return ModelEmaOptions().decay(0.75).exclude_buffers(true);
  if (name == "after3")
    return ModelEmaOptions()
        .decay(0.99)
        .use_warmup(true)
        .warmup_gamma(2.0)
        .warmup_power(0.75)
        .min_decay(0.3)
        .update_after_step(3);
  return ModelEmaOptions().decay(0.9999).use_warmup(true).warmup_power(0.75);  // "power34"
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}

}  // namespace

TEST_CASE("get_decay follows ModelEmaV3's curve: 0 for the first update, warm-up, clamps, update_after_step") {
  auto g = fixture("ema.safetensors");
  Generator gen(0);
  Tiny model(gen);
  const std::vector<double> steps = g.at("decay.steps").to_vector();
  for (const std::string name : {"warmup", "plain", "no_buffers", "after3", "power34"}) {
    CAPTURE(name);
    ModelEma ema(model, config(name));
    const std::vector<double> want = g.at("decay." + name).to_vector();
    for (size_t i = 0; i < steps.size(); ++i) {
      CAPTURE(steps[i]);
      CHECK(std::fabs(ema.get_decay(static_cast<int64_t>(steps[i])) - want[i]) <= 1e-15);
    }
  }
  // timm's notes on the warm-up (gamma 1): power 2/3 reaches 0.999 at 31.6K steps, power 3/4 at 10K
  CHECK(ModelEma(model, ModelEmaOptions().decay(1).use_warmup(true)).get_decay(31601) ==
        doctest::Approx(0.999).epsilon(1e-4));
  CHECK(ModelEma(model, config("power34").decay(1)).get_decay(10001) == doctest::Approx(0.999).epsilon(1e-4));
}

TEST_CASE("update matches ModelEmaV3 over six steps, float32 and float64") {
  auto g = fixture("ema.safetensors");
  for (DType dt : {DType::Float32, DType::Float64}) {
    const std::string dn = dt == DType::Float32 ? "f32" : "f64";
    // torch.lerp in float32 may round differently (a fused multiply-add, its vector kernel): float precision
    const double tol = dt == DType::Float32 ? 2e-6 : 1e-15;
    for (const std::string name : {"warmup", "plain", "no_buffers", "after3"}) {
      CAPTURE(dn);
      CAPTURE(name);
      Generator gen(0);
      Tiny model(gen);
      model.to(dt);
      model.load_state_dict(step_state(g, dn + ".model.0.", model));
      ModelEma ema(model, config(name));
      double err = 0;
      for (int s = 1; s <= 6; ++s) {
        model.load_state_dict(step_state(g, dn + ".model." + std::to_string(s) + ".", model));
        if (name == "plain" && s >= 5)
          ema.update(model);  // no step: the fixed decay
        else
          ema.update(model, s);
        for (const auto& [n, t] : ema.state_dict()) {
          CAPTURE(s);
          CAPTURE(n);
          const Tensor want = g.at(dn + ".ema." + name + "." + std::to_string(s) + "." + n);
          REQUIRE(t.shape() == want.shape());
          CHECK(t.dtype() == (n == "bn.num_batches_tracked" ? DType::Int64 : dt));
          err = std::max(err, max_abs_diff(t, want));
        }
      }
      CHECK(err <= tol);
      // num_batches_tracked is copied, never averaged: 7 at the start, +1 per step
      for (const auto& [n, t] : ema.state_dict())
        if (n == "bn.num_batches_tracked") CHECK(t.item() == 13);
    }
  }
}

TEST_CASE("the EMA owns its tensors, and set() copies the model") {
  Generator gen(1);
  Tiny model(gen);
  ModelEma ema(model, ModelEmaOptions().decay(0.5));
  const NamedTensors before = ema.state_dict();
  std::vector<Tensor> snapshot;
  for (const auto& [n, t] : before) snapshot.push_back(t.clone());
  {
    NoGradGuard no_grad;
    for (auto& [n, t] : model.state_dict()) t.fill_(t.to_vector()[0] + 1);
  }
  for (size_t i = 0; i < before.size(); ++i) CHECK(bitwise_equal(before[i].second, snapshot[i]));
  ema.set(model);
  const NamedTensors now = model.state_dict();
  for (size_t i = 0; i < now.size(); ++i) CHECK(bitwise_equal(ema.state_dict()[i].second, now[i].second));
}

TEST_CASE("EmaSwap evaluates with the EMA's weights and restores the model's bit for bit") {
  Generator gen(2);
  Tiny model(gen);
  ModelEma ema(model, ModelEmaOptions().decay(0.5));
  {
    NoGradGuard no_grad;
    for (auto& [n, t] : model.state_dict())
      if (is_floating(t.dtype())) t.add_(randn(t.shape(), gen, t.dtype()));
  }
  ema.update(model);
  const NamedTensors live = model.state_dict();
  std::vector<Tensor> own;
  for (const auto& [n, t] : live) own.push_back(t.clone());
  {
    nn::EmaSwap swap(model, ema);
    const NamedTensors inside = model.state_dict();
    for (size_t i = 0; i < inside.size(); ++i) {
      CAPTURE(inside[i].first);
      CHECK(inside[i].second.same(live[i].second));  // the same tensors, their values replaced
      CHECK(bitwise_equal(inside[i].second, ema.state_dict()[i].second));
    }
  }
  const NamedTensors after = model.state_dict();
  for (size_t i = 0; i < after.size(); ++i) {
    CAPTURE(after[i].first);
    CHECK(bitwise_equal(after[i].second, own[i]));
    CHECK(after[i].second.requires_grad() == live[i].second.requires_grad());
  }
}

TEST_CASE("EMA state through a checkpoint's extra entries, strictly") {
  Generator gen(3);
  Tiny model(gen);
  ModelEma ema(model, ModelEmaOptions().decay(0.5));
  {
    NoGradGuard no_grad;
    for (auto& [n, t] : model.state_dict())
      if (is_floating(t.dtype())) t.add_(randn(t.shape(), gen, t.dtype()));
  }
  ema.update(model);
  const NamedTensors s = ema.state();
  REQUIRE(s.size() == model.state_dict().size());
  CHECK(s[0].first == "ema.conv.weight");
  CHECK(s.back().first == "ema.fc.bias");

  mg::testing::TempDir dir;
  serialize::CheckpointInfo info;
  info.extra = s;
  info.extra.emplace_back("best_acc", Tensor::scalar(0.5));
  serialize::save_checkpoint(dir / "ck.safetensors", model, nullptr, {}, info);
  const serialize::Checkpoint ck = serialize::read_checkpoint(dir / "ck.safetensors");

  Generator other(4);
  Tiny fresh(other);
  ModelEma restored(fresh);
  restored.load_state(ck.info.extra);  // "best_acc" has no "ema." prefix: not the EMA's
  for (size_t i = 0; i < s.size(); ++i) CHECK(bitwise_equal(restored.state_dict()[i].second, s[i].second));

  NamedTensors missing(s.begin() + 1, s.end()), unknown = s, misshaped = s;
  unknown.emplace_back("ema.head.weight", Tensor::scalar(0));
  misshaped[0].second = zeros({3});
  const Tensor keep = restored.state_dict()[0].second.clone();
  CHECK_THROWS_MG(restored.load_state(missing), "ModelEma::load_state", "missing 'ema.conv.weight'");
  CHECK_THROWS_MG(restored.load_state(unknown), "unexpected 'ema.head.weight'");
  CHECK_THROWS_MG(restored.load_state(misshaped), "'ema.conv.weight' is float32[3], expected float32[3, 2, 3, 3]");
  CHECK(bitwise_equal(restored.state_dict()[0].second, keep));
}

TEST_CASE("update refuses another model's state with a message naming the entry") {
  Generator gen(5);
  Tiny model(gen);
  ModelEma ema(model);
  nn::Linear other(3, 4, true, gen);
  CHECK_THROWS_MG(ema.update(other, 1), "ModelEma::update", "has 2 state entries, the EMA 9");
  Tiny wide(gen);
  wide.to(DType::Float64);
  CHECK_THROWS_MG(ema.update(wide, 1), "ModelEma::update", "'conv.weight' is float64[3, 2, 3, 3]",
                  "make the EMA after model.to(dtype)");
  CHECK_THROWS_MG(nn::EmaSwap(wide, ema), "EmaSwap", "conv.weight");
  CHECK_THROWS_MG(ModelEma(model, ModelEmaOptions().decay(1.5)), "ModelEma", "decay");
}
