// The claims the teaching documents make about the library, checked on the library itself (the
// documents' commands and printed output are checked by tests/teaching/run_doc.sh):
// docs/batchnorm.md's update numbers, docs/maxvit.md's partition index arithmetic and bias
// expansion, docs/autograd.md's printed graph and gradients.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/models/maxvit.h"
#include "maxgrad/nn/batchnorm.h"

using namespace mg;

namespace {

// x (4, 2, 3, 3) of examples/teaching/batchnorm_step.cpp: channel 0 mean 2, biased variance 1.25; channel 1
// mean -1, variance 9.
Tensor batchnorm_step_input() {
  std::vector<double> v(72);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t k = 0; k < 9; ++k) {
      const int64_t j = n * 9 + k;
      v[static_cast<size_t>((n * 2 + 0) * 9 + k)] = 0.5 + static_cast<double>(j % 4);
      v[static_cast<size_t>((n * 2 + 1) * 9 + k)] = j % 2 == 0 ? -4.0 : 2.0;
    }
  return Tensor::from_vector(v, {4, 2, 3, 3});
}

}  // namespace

TEST_CASE("docs/batchnorm.md: one update with momentum 0.01 and 0.99, unbiased variance into running_var") {
  const Tensor x = batchnorm_step_input();
  struct Case {
    double m, mean0, var0, mean1, var1;
  };
  // running = (1 - m) * 0 or 1 + m * (batch mean, or biased variance * 36/35)
  for (const Case& k : {Case{0.01, 0.02, 0.99 + 0.01 * 1.25 * 36 / 35, -0.01, 0.99 + 0.01 * 9.0 * 36 / 35},
                        Case{0.99, 1.98, 0.01 + 0.99 * 1.25 * 36 / 35, -0.99, 0.01 + 0.99 * 9.0 * 36 / 35}}) {
    CAPTURE(k.m);
    nn::BatchNorm2d bn(2, nn::BatchNormOptions::pytorch(k.m));
    bn.train();
    bn(x);
    CHECK(bn.running_mean.at({0}) == doctest::Approx(k.mean0).epsilon(1e-6));
    CHECK(bn.running_var.at({0}) == doctest::Approx(k.var0).epsilon(1e-6));
    CHECK(bn.running_mean.at({1}) == doctest::Approx(k.mean1).epsilon(1e-6));
    CHECK(bn.running_var.at({1}) == doctest::Approx(k.var1).epsilon(1e-6));
    CHECK(bn.num_batches_tracked.item() == 1);
  }
  // A TensorFlow decay of 0.99 is PyTorch's 0.01.
  CHECK(nn::BatchNormOptions::from_tensorflow_decay(0.99).momentum().value() == doctest::Approx(0.01));
}

TEST_CASE("docs/batchnorm.md: halfway in 69 steps at momentum 0.01, in 1 at 0.99; eval mode writes nothing") {
  const Tensor x = batchnorm_step_input();
  for (const auto& [m, expected] : {std::pair{0.01, 69}, std::pair{0.99, 1}}) {
    nn::BatchNorm2d bn(2, nn::BatchNormOptions::pytorch(m));
    bn.train();
    int steps = 0;
    while (bn.running_mean.at({0}) < 1.0 && steps < 1000) {
      bn(x);
      ++steps;
    }
    CHECK(steps == expected);
    CHECK(static_cast<int>(std::ceil(std::log(0.5) / std::log(1 - m))) == expected);
  }
  nn::BatchNorm2d bn(2, nn::BatchNormOptions::pytorch(0.99));
  bn.eval();
  bn(x);
  CHECK(bn.running_mean.to_vector() == std::vector<double>{0, 0});
  CHECK(bn.running_var.to_vector() == std::vector<double>{1, 1});
}

// docs/maxvit.md: token (r, c) of an H x W map, partition size P.
//   window: group (r / P) * (W / P) + c / P,             place (r % P) * P + c % P
//   grid:   group (r % (H/P)) * (W/P) + c % (W/P),       place (r / (H/P)) * P + c / (W/P)
TEST_CASE("docs/maxvit.md: window and grid partition put each token where the index arithmetic says") {
  for (const auto& size : {std::tuple{8, 8, 4}, std::tuple{16, 16, 4}, std::tuple{8, 12, 4}, std::tuple{12, 6, 3}}) {
    const int h = std::get<0>(size), w = std::get<1>(size), p = std::get<2>(size);
    CAPTURE(h);
    CAPTURE(w);
    CAPTURE(p);
    // channel 0 holds the row, channel 1 the column of every token
    std::vector<double> v(static_cast<size_t>(2 * h * w));
    for (int r = 0; r < h; ++r)
      for (int c = 0; c < w; ++c) v[static_cast<size_t>(r * w + c)] = r, v[static_cast<size_t>(h * w + r * w + c)] = c;
    const Tensor x = Tensor::from_vector(v, {1, 2, h, w}, DType::Float64);
    for (bool grid : {false, true}) {
      CAPTURE(grid);
      // The cell sizes and axis swap of PartitionAttentionLayer::forward.
      const int64_t ph = grid ? h / p : p, pw = grid ? w / p : p;
      Tensor t = models::window_partition(x, ph, pw);
      if (grid) t = t.transpose(1, 2);
      REQUIRE(t.shape() == Shape{1, (h / p) * (w / p), p * p, 2});
      int wrong = 0;
      for (int64_t g = 0; g < t.size(1); ++g)
        for (int64_t k = 0; k < t.size(2); ++k) {
          const auto r = static_cast<int64_t>(t.at({0, g, k, 0})), c = static_cast<int64_t>(t.at({0, g, k, 1}));
          const int64_t group = grid ? (r % (h / p)) * (w / p) + c % (w / p) : (r / p) * (w / p) + c / p;
          const int64_t place = grid ? (r / (h / p)) * p + c / (w / p) : (r % p) * p + c % p;
          wrong += group != g || place != k;
        }
      CHECK(wrong == 0);
      // window_departition undoes it
      Tensor back = grid ? t.transpose(1, 2) : t;
      CHECK(models::window_departition(back, ph, pw, h / ph, w / pw).to_vector() == x.to_vector());
    }
  }
}

TEST_CASE("docs/maxvit.md: the bias matrix repeats each table entry along one offset; its diagonal is the centre") {
  const int64_t p = 4, n = p * p, side = 2 * p - 1;
  Generator gen(3);
  models::RelativePositionalMultiHeadAttention attn(2, 1, p, false, gen);  // 2 heads of width 1
  const Tensor bias = attn.relative_positional_bias();                     // (1, 2, n, n)
  REQUIRE(bias.shape() == Shape{1, 2, n, n});
  for (int64_t head = 0; head < 2; ++head)
    for (int64_t a = 0; a < n; ++a)
      for (int64_t b = 0; b < n; ++b) {
        const int64_t dr = a / p - b / p, dc = a % p - b % p;
        const double expected = attn.relative_position_bias_table.at({(dr + p - 1) * side + (dc + p - 1), head});
        if (bias.at({0, head, a, b}) != expected) FAIL("bias[", head, "][", a, "][", b, "] is not table[dr, dc]");
      }
  const double centre = attn.relative_position_bias_table.at({(p - 1) * side + (p - 1), 0});
  for (int64_t a = 0; a < n; ++a) CHECK(bias.at({0, 0, a, a}) == centre);
}

TEST_CASE("docs/autograd.md: the scalar example's graph and gradients") {
  auto leaf = [](double v, const char* name) {
    Tensor t = Tensor::scalar(v, DType::Float64);
    t.requires_grad_();
    t.set_name(name);
    return t;
  };
  Tensor a = leaf(2, "a"), b = leaf(-3, "b"), c = leaf(10, "c"), f = leaf(-2, "f");
  Tensor L = mul(add(mul(a, b), c), f);
  CHECK(graph_to_string(L) ==
        "mul\n"
        "  add\n"
        "    mul\n"
        "      a float64[]\n"
        "      b float64[]\n"
        "    c float64[]\n"
        "  f float64[]\n");
  L.backward();
  CHECK(a.grad().item() == 6);   // b * f
  CHECK(b.grad().item() == -4);  // a * f
  CHECK(c.grad().item() == -2);  // f
  CHECK(f.grad().item() == 4);   // a * b + c
}

TEST_CASE("docs/autograd.md: a weight shared by a batched matmul gets the sum of the per-sample gradients") {
  Generator gen(5);
  Tensor x = randn({3, 2, 4}, gen, DType::Float64), w = randn({4, 5}, gen, DType::Float64);
  w.requires_grad_();
  sum(matmul(x, w)).backward();
  // d sum(x @ w) / dw[i][j] = sum over the batch and rows of x[.., i]
  const Tensor expected = sum(x, {0, 1}).unsqueeze(1).expand({4, 5});
  const std::vector<double> g = w.grad().to_vector(), e = expected.to_vector();
  REQUIRE(g.size() == e.size());
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(e[i]).epsilon(1e-12));
}

TEST_CASE("docs/autograd.md: the errors it quotes") {
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  Tensor a = Tensor::scalar(2, DType::Float64).requires_grad_(), b = Tensor::scalar(3, DType::Float64);
  Tensor L = mul(a, b);
  L.backward();
  CHECK(message([&] { L.backward(); })
            .find("the graph through 'mul' was already freed by an earlier backward(); pass retain_graph=true to the "
                  "first call") != std::string::npos);
  // an in-place write into a tensor that requires grad, with recording on
  CHECK(message([&] { a.add_(b); }).find("requires grad") != std::string::npos);
  {
    NoGradGuard no_grad;  // the same write is how an optimiser step is done
    a.add_(b);
  }
  CHECK(a.item() == 5);
}
