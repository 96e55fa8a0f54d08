// Precise BatchNorm statistics (nn/precise_bn.h) against PyTorch: the running statistics that
// BatchNorm2d records with momentum 1.0 on the batches concatenated (tests/golden/precise_bn, made
// by tests/golden/make_precise_bn.py), and the promise that nothing else in the model changes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>

#include "helpers.h"
#include "maxgrad/nn/layers.h"
#include "maxgrad/nn/precise_bn.h"
#include "maxgrad/nn/serialize/serialize.h"

using namespace mg;
using mg::testing::check_close;
using nn::NamedTensors;

namespace {

// y = bn1(conv1(x)) + bn2(conv2(x)), torch's module names
struct TwoBranches : nn::Module {
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  explicit TwoBranches(Generator& gen) {
    conv1 =
        register_module("conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 4, 3).padding(1).bias(false), gen));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 5, 1).stride(2), gen));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(4, nn::BatchNormOptions().eps(1e-3)));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(5));
  }
  Tensor forward(const Tensor& x) override {
    const Tensor a = bn1->forward(conv1->forward(x)), b = bn2->forward(conv2->forward(x));
    return add(a, upsample2(b));
  }
  // b (N, C, 3, 3) -> the first 4 channels of (N, C, 6, 6) by repetition: only to combine the branches
  static Tensor upsample2(const Tensor& b) {
    return b.narrow(1, 0, 4).unsqueeze(3).unsqueeze(5).expand({b.size(0), 4, 3, 2, 3, 2}).reshape({b.size(0), 4, 6, 6});
  }
};

std::map<std::string, Tensor> golden() {
  const char* src = std::getenv("MAXGRAD_SOURCE");
  const std::string root = src ? src : ".";
  std::map<std::string, Tensor> t;
  for (auto& [n, v] : serialize::load_tensors(root + "/tests/golden/precise_bn/case.safetensors")) t[n] = v;
  return t;
}

}  // namespace

TEST_CASE("precise BatchNorm statistics are PyTorch's momentum-1.0 statistics of the batches concatenated") {
  auto g = golden();
  Generator gen(0);
  TwoBranches model(gen);
  model.to(DType::Float64);
  NamedTensors weights;
  for (const char* n :
       {"conv1.weight", "conv2.weight", "conv2.bias", "bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias"})
    weights.emplace_back(n, g.at(n));
  for (auto& [n, t] : model.state_dict())
    if (n.find("running") != std::string::npos || n.find("num_batches") != std::string::npos)
      weights.emplace_back(n, t);
  model.load_state_dict(weights);
  model.eval();
  const NamedTensors before = model.state_dict();
  NamedTensors snapshot;
  for (auto& [n, t] : before) snapshot.emplace_back(n, t.clone());

  const std::vector<Tensor> batches{g.at("batch.0"), g.at("batch.1"), g.at("batch.2")};  // 4, 3 and 5 images
  const auto pop = nn::bn_population_stats(model, 3, [&](int64_t i) { model(batches[static_cast<size_t>(i)]); });
  REQUIRE(pop.size() == 2);
  CHECK(pop[0].name == "bn1");
  CHECK(pop[1].name == "bn2");
  CHECK(pop[0].count == 12 * 6 * 6);
  CHECK(pop[1].count == 12 * 3 * 3);
  CHECK(pop[0].batch_mean.size() == 3);
  check_close(Tensor::from_vector(pop[0].mean, {4}, DType::Float64), g.at("expected.bn1.running_mean"), 1e-12, 1e-12);
  check_close(Tensor::from_vector(pop[0].var, {4}, DType::Float64), g.at("expected.bn1.running_var"), 1e-12, 1e-12);
  check_close(Tensor::from_vector(pop[1].mean, {5}, DType::Float64), g.at("expected.bn2.running_mean"), 1e-12, 1e-12);
  check_close(Tensor::from_vector(pop[1].var, {5}, DType::Float64), g.at("expected.bn2.running_var"), 1e-12, 1e-12);

  // nothing in the model changed: weights, buffers (num_batches_tracked too), modes
  const NamedTensors after = model.state_dict();
  REQUIRE(after.size() == snapshot.size());
  for (size_t i = 0; i < after.size(); ++i) {
    INFO(after[i].first);
    CHECK(testing::bitwise_equal(after[i].second, snapshot[i].second));
  }
  CHECK_FALSE(model.is_training());
  CHECK_FALSE(model.bn1->is_training());

  // update_bn_stats writes them into running_mean / running_var, and only there
  nn::update_bn_stats(model, 3, [&](int64_t i) { model(batches[static_cast<size_t>(i)]); });
  check_close(model.bn1->running_var, g.at("expected.bn1.running_var"), 1e-12, 1e-12);
  check_close(model.bn2->running_mean, g.at("expected.bn2.running_mean"), 1e-12, 1e-12);
  for (auto& [n, t] : snapshot)
    if (n == "bn1.num_batches_tracked") CHECK(model.bn1->num_batches_tracked.item() == t.item());
}

TEST_CASE("precise statistics include the spread of the batch means, which averaging per-batch statistics loses") {
  // torch.optim.swa_utils.update_bn (momentum None) averages per-batch means and unbiased variances;
  // the pooled variance is larger by about the variance of the batch means
  Generator gen(5);
  nn::Sequential model({std::make_shared<nn::BatchNorm2d>(1)});
  model.to(DType::Float64);
  std::vector<Tensor> batches;
  for (int i = 0; i < 4; ++i) batches.push_back(add(randn({8, 1, 2, 2}, gen, DType::Float64), 3.0 * i));
  const auto pop = nn::bn_population_stats(model, 4, [&](int64_t i) { model(batches[static_cast<size_t>(i)]); });
  double avg_var = 0;
  for (int i = 0; i < 4; ++i) avg_var += var(batches[static_cast<size_t>(i)], {0, 1, 2, 3}).item() / 4;
  const double pooled = var(cat(batches, int64_t{0}), {0, 1, 2, 3}).item();
  CHECK(pop[0].var[0] == doctest::Approx(pooled).epsilon(1e-12));
  CHECK(pop[0].var[0] > avg_var + 10);  // batch means 0, 3, 6, 9: their spread adds about 11
}

TEST_CASE("precise BatchNorm turns stochastic depth and dropout off and restores every mode after") {
  auto gen = std::make_shared<Generator>(6);
  nn::Sequential model({std::make_shared<nn::BatchNorm2d>(2), std::make_shared<nn::StochasticDepth>(0.9, gen),
                        std::make_shared<nn::Dropout>(0.9, gen)});
  model.train();
  const std::vector<uint64_t> rng = gen->state();
  Tensor x = randn({4, 2, 3, 3}, *gen);
  const std::vector<uint64_t> rng_after_x = gen->state();
  Tensor seen;
  const auto pop = nn::bn_population_stats(model, 1, [&](int64_t) { seen = model(x); });
  CHECK(gen->state() == rng_after_x);  // no mask was drawn
  CHECK(model.is_training());
  CHECK(model[1]->is_training());
  CHECK(rng != rng_after_x);
  const std::string msg = testing::error_message([&] {
    nn::Sequential none({std::make_shared<nn::ReLU>()});
    nn::bn_population_stats(none, 1, [&](int64_t) { none(x); });
  });
  CHECK(msg.find("no BatchNorm2d") != std::string::npos);
}
