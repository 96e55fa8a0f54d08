// The nn layers MaxViT does not use (and those it does, as modules): each forward is its op, the
// parameters carry torch.nn's names, shapes and default init, and the train/eval switch does what
// torch.nn's does. The ops themselves are checked against PyTorch in test_ops_values.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>

#include "helpers.h"
#include "maxgrad/nn/batchnorm.h"
#include "maxgrad/nn/layers.h"

using namespace mg;
using mg::testing::check_close;
using mg::testing::check_values;

namespace {
// Every value of t lies in [-bound, bound] and the spread covers most of it (a uniform init).
void check_uniform(const Tensor& t, double bound) {
  double lo = 1e9, hi = -1e9;
  for (double v : t.to_vector()) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi - lo > bound);  // not all zeros or constant
}
}  // namespace

TEST_CASE("Linear: weight (out, in), bias (out), U(-1/sqrt(in), 1/sqrt(in)), y = x W^T + b") {
  Generator gen(1);
  nn::Linear fc(16, 8, true, gen);
  const auto params = fc.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[0].second.shape() == Shape{8, 16});
  CHECK(params[1].first == "bias");
  CHECK(params[1].second.shape() == Shape{8});
  check_uniform(fc.weight, 0.25);
  check_uniform(fc.bias, 0.25);
  Tensor x = randn({3, 16}, gen);
  check_close(fc.forward(x), add(matmul(x, fc.weight.transpose(0, 1)), fc.bias), 1e-5, 1e-5);
  nn::Linear no_bias(4, 2, false, gen);
  CHECK(no_bias.named_parameters().size() == 1);
  CHECK(testing::error_message([&] { nn::Linear(0, 2, true, gen); }).find("Linear") != std::string::npos);
}

TEST_CASE("Conv2d: weight (out, in/groups, k, k), fan-in init, groups checked") {
  Generator gen(2);
  nn::Conv2d conv(nn::Conv2dOptions(4, 6, 3).stride(2).padding(1).groups(2), gen);
  CHECK(conv.weight.shape() == Shape{6, 2, 3, 3});
  CHECK(conv.bias.shape() == Shape{6});
  check_uniform(conv.weight, 1.0 / std::sqrt(2.0 * 9));
  Tensor x = randn({2, 4, 7, 7}, gen);
  Tensor y = conv.forward(x);
  CHECK(y.shape() == Shape{2, 6, 4, 4});
  check_close(y, conv2d(x, conv.weight, conv.bias, 2, 1, 2));
  const std::string msg =
      testing::error_message([&] { nn::Conv2d(nn::Conv2dOptions(4, 6, 3).padding(1).groups(3), gen); });
  CHECK(msg.find("divisible by groups") != std::string::npos);
}

TEST_CASE("LayerNorm: weight 1, bias 0, normalises the last dim") {
  nn::LayerNorm ln(5, 1e-6);
  CHECK(ln.weight.to_vector() == std::vector<double>(5, 1.0));
  CHECK(ln.bias.to_vector() == std::vector<double>(5, 0.0));
  Generator gen(3);
  Tensor y = ln.forward(randn({4, 5}, gen, DType::Float64).to(DType::Float32));
  check_close(mean(y, {1}), zeros({4}), 0, 1e-5);
  check_close(var(y, {1}, 0), ones({4}), 0, 1e-4);
}

TEST_CASE("activation modules are their ops") {
  Tensor x = Tensor::from_vector(std::vector<double>{-2, -0.5, 0, 0.5, 2}, {5}, DType::Float64);
  check_close(nn::GELU().forward(x), gelu(x), 0, 0);
  check_close(nn::SiLU().forward(x), silu(x), 0, 0);
  check_close(nn::Tanh().forward(x), tanh(x), 0, 0);
  check_values(
      nn::Sigmoid().forward(x),
      {1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(0.5)), 0.5, 1 / (1 + std::exp(-0.5)), 1 / (1 + std::exp(-2.0))},
      1e-12, 1e-12);
  CHECK(nn::Identity().forward(x).impl_ptr() == x.impl_ptr());
}

TEST_CASE("Flatten keeps dim 0 and joins the rest, as torch.nn.Flatten()") {
  Tensor x = arange(0, 24, 1, DType::Float32).reshape({2, 3, 2, 2});
  Tensor y = nn::Flatten().forward(x);
  CHECK(y.shape() == Shape{2, 12});
  CHECK(y.to_vector() == x.to_vector());
}

TEST_CASE("AvgPool2d and AdaptiveAvgPool2d are their ops") {
  Generator gen(4);
  Tensor x = randn({2, 3, 6, 6}, gen);
  check_close(nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(2).padding(1).count_include_pad(false)).forward(x),
              avg_pool2d(x, 3, 2, 1, false), 0, 0);
  check_close(nn::AvgPool2d(2, 2, 0).forward(x), avg_pool2d(x, 2, 2, 0), 0, 0);
  Tensor g = nn::AdaptiveAvgPool2d(1).forward(x);
  CHECK(g.shape() == Shape{2, 3, 1, 1});
  check_close(g.flatten(1), mean(x, {2, 3}), 1e-6, 1e-6);
}

TEST_CASE("Dropout: zeros about p of the values and scales the rest by 1/(1-p) in training; identity in eval") {
  auto gen = std::make_shared<Generator>(5);
  nn::Dropout drop(0.25, gen);
  Tensor x = ones({4000});
  const std::vector<double> y = drop.forward(x).to_vector();
  int zeros_seen = 0;
  for (double v : y) {
    if (v == 0)
      ++zeros_seen;
    else
      CHECK(v == doctest::Approx(1 / 0.75));
  }
  CHECK(zeros_seen > 850);  // 1000 expected; 5 standard deviations (27) either way
  CHECK(zeros_seen < 1150);
  drop.eval();
  CHECK(drop.forward(x).to_vector() == x.to_vector());
  nn::Dropout none(0, gen);
  CHECK(none.forward(x).impl_ptr() == x.impl_ptr());
}

TEST_CASE("StochasticDepth drops whole samples in training, and add_to adds the kept branch") {
  auto gen = std::make_shared<Generator>(6);
  nn::StochasticDepth sd(0.5, gen);
  Tensor branch = ones({64, 3, 2, 2});
  Tensor y = sd.forward(branch);
  int dropped = 0;
  for (int64_t s = 0; s < 64; ++s) {
    const std::vector<double> v = y.narrow(0, s, 1).to_vector();
    const bool all_zero = std::all_of(v.begin(), v.end(), [](double e) { return e == 0; });
    const bool all_two = std::all_of(v.begin(), v.end(), [](double e) { return e == 2; });
    CHECK((all_zero || all_two));
    dropped += all_zero;
  }
  CHECK(dropped > 10);
  CHECK(dropped < 54);
  sd.eval();
  Tensor r = full({64, 3, 2, 2}, 3.0);
  CHECK(sd.add_to(r, branch).to_vector() == std::vector<double>(64 * 12, 4.0));
}

TEST_CASE("Sequential applies its children in order, named 0, 1, ... or as given; train/eval reach them") {
  Generator gen(7);
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::Linear>(4, 3, true, gen));
  seq->push_back(std::make_shared<nn::Tanh>());
  seq->add("head", std::make_shared<nn::Linear>(3, 2, false, gen));
  auto drop = std::make_shared<nn::Dropout>(0.5, std::make_shared<Generator>(8));
  seq->push_back(drop);
  CHECK(seq->size() == 4);
  const auto params = seq->named_parameters();
  REQUIRE(params.size() == 3);
  CHECK(params[0].first == "0.weight");
  CHECK(params[1].first == "0.bias");
  CHECK(params[2].first == "head.weight");
  seq->eval();
  CHECK_FALSE(drop->is_training());
  Tensor x = randn({5, 4}, gen);
  auto& l0 = static_cast<nn::Linear&>(*(*seq)[0]);
  auto& l2 = static_cast<nn::Linear&>(*(*seq)[2]);
  check_close(seq->forward(x), linear(tanh(linear(x, l0.weight, l0.bias)), l2.weight), 1e-6, 1e-6);
}

TEST_CASE("options objects: named setters with torch.nn's defaults; the old positional orders do not compile") {
  const nn::Conv2dOptions c = nn::Conv2dOptions(3, 8, 3).stride(2).padding(1);
  CHECK(c.in_channels() == 3);
  CHECK(c.out_channels() == 8);
  CHECK(c.kernel_size() == 3);
  CHECK(c.stride() == 2);
  CHECK(c.padding() == 1);
  CHECK(c.groups() == 1);
  CHECK(c.bias());
  CHECK_FALSE(nn::LinearOptions(4, 2).bias(false).bias());
  const nn::BatchNormOptions bn;
  CHECK(bn.eps() == 1e-5);
  CHECK(*bn.momentum() == 0.1);
  static_assert(
      !std::is_constructible_v<nn::Conv2d, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, Generator&>);
  // BatchNormOptions{1e-3, 0.01} (which number is which?) is not a way to make one
  static_assert(!std::is_constructible_v<nn::BatchNormOptions, double, double>);
}

TEST_CASE("a whole small network in one Sequential: conv, BatchNorm, ReLU, pooling, flatten, linear") {
  Generator gen(9);
  nn::Sequential net({std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 4, 3).padding(1), gen),
                      std::make_shared<nn::BatchNorm2d>(4), std::make_shared<nn::ReLU>(),
                      std::make_shared<nn::AvgPool2d>(2, 2, 0), std::make_shared<nn::Flatten>(),
                      std::make_shared<nn::Linear>(4 * 4 * 4, 10, true, gen)});
  CHECK(net.size() == 6);
  Tensor y = net.forward(randn({2, 3, 8, 8}, gen));
  CHECK(y.shape() == Shape{2, 10});
  sum(y).backward();
  for (auto& [name, p] : net.named_parameters()) {
    INFO(name);
    CHECK(p.grad().defined());
  }
  CHECK(nn::ReLU().forward(Tensor::from_vector(std::vector<double>{-1, 2}, {2})).to_vector() ==
        std::vector<double>{0, 2});
}
