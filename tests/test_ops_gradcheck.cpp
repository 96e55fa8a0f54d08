// Every differentiable op of core/ops.h against float64 central differences (tests/gradcheck.h),
// on contiguous inputs and on views whose memory is laid out otherwise: permuted (dims stored in
// reverse), strided (every other element, non-zero offset) and expanded (stride 0, made inside f
// so the leaf stays one value per element), plus broadcast shapes where the op broadcasts.
#include <doctest/doctest.h>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/generator.h"
#include "maxgrad/core/ops.h"
#include "gradcheck.h"
#include "helpers.h"

using namespace mg;
using V = std::vector<Tensor>;
using Fn = std::function<Tensor(const V&)>;

namespace {

// The three layouts every op is tried on; `make` builds the input of the given shape.
enum class Layout { Contiguous, Permuted, Strided };
const Layout kLayouts[] = {Layout::Contiguous, Layout::Permuted, Layout::Strided};
std::string name_of(Layout l) {
  return l == Layout::Contiguous ? "contiguous" : l == Layout::Permuted ? "permuted" : "strided";
}

struct Maker {
  mg::testing::Inputs in{7};
  Tensor operator()(Layout l, const Shape& s) {
    switch (l) {
      case Layout::Permuted: return in.permuted(s);
      case Layout::Strided: return in.strided(s);
      default: return in.randn(s);
    }
  }
  // Values in [lo, hi) with the same layouts: for ops defined on part of the line.
  Tensor in_range(Layout l, const Shape& s, double lo, double hi) {
    Tensor t = (*this)(l, s);
    NoGradGuard ng;
    Tensor u = in.uniform(s, lo, hi);
    t.copy_(u);
    return t;
  }
};

Tensor idx(const std::vector<int64_t>& v, const Shape& s) { return Tensor::from_vector_i64(v, s); }

}  // namespace

// ---- arithmetic ----

TEST_CASE("gradcheck add, sub, mul, div on every layout") {
  Maker mk;
  const std::pair<std::string, Fn> ops[] = {
      {"add", [](const V& x) { return add(x[0], x[1]); }},
      {"sub", [](const V& x) { return sub(x[0], x[1]); }},
      {"mul", [](const V& x) { return mul(x[0], x[1]); }},
      {"div", [](const V& x) { return div(x[0], x[1]); }},
  };
  for (const auto& op : ops)
    for (Layout la : kLayouts)
      for (Layout lb : kLayouts) {
        INFO(op.first, ": ", name_of(la), " op ", name_of(lb));
        CHECK_GRADCHECK(op.second, {mk(la, {3, 4}), mk.in_range(lb, {3, 4}, 0.5, 2.0)});
      }
}

TEST_CASE("gradcheck add, sub, mul, div with broadcasting") {
  Maker mk;
  const std::pair<std::string, Fn> ops[] = {
      {"add", [](const V& x) { return add(x[0], x[1]); }},
      {"sub", [](const V& x) { return sub(x[0], x[1]); }},
      {"mul", [](const V& x) { return mul(x[0], x[1]); }},
      {"div", [](const V& x) { return div(x[0], x[1]); }},
  };
  const std::pair<Shape, Shape> shapes[] = {{{2, 3}, {3}}, {{2, 1}, {1, 3}}, {{4, 1, 3}, {2, 3}},
                                            {{2, 3}, {}},  {{}, {2, 3}},     {{3}, {2, 1, 1}}};
  for (const auto& op : ops)
    for (const auto& ab : shapes) {
      INFO(op.first, ": ", shape_str(ab.first), " op ", shape_str(ab.second));
      CHECK_GRADCHECK(op.second, {mk.in.randn(ab.first), mk.in.uniform(ab.second, 0.5, 2.0)});
    }
  // an operand expanded in f (stride 0), against a permuted one
  CHECK_GRADCHECK(
      [](const V& x) {
        return mul(x[0].expand({3, 4}), x[1]);
      },
      {mk.in.randn({3, 1}), mk.in.permuted({3, 4})});
  CHECK_GRADCHECK(
      [](const V& x) {
        return div(x[1], x[0].expand({2, 3, 4}));
      },
      {mk.in.uniform({4}, 0.5, 2.0), mk.in.strided({2, 3, 4})});
  // the same tensor on both sides
  CHECK_GRADCHECK([](const V& x) { return mul(x[0], x[0]); }, {mk.in.randn({3})});
  CHECK_GRADCHECK([](const V& x) { return div(x[0], x[0].narrow(0, 1, 1)); }, {mk.in.uniform({3}, 0.5, 2.0)});
}

TEST_CASE("gradcheck mul by one value per row (squeeze-excitation's scale): both gradients in one pass") {
  // mul's backward takes these in one pass over g and x (row_broadcast_len in core/ops/arith.cpp):
  // the scale first or second, the rows of a 4-D map or of a matrix, one operand without a gradient
  Maker mk;
  CHECK_GRADCHECK([](const V& x) { return mul(x[0], x[1]); }, {mk.in.randn({2, 3, 1, 1}), mk.in.randn({2, 3, 4, 5})});
  CHECK_GRADCHECK([](const V& x) { return mul(x[1], x[0]); }, {mk.in.randn({2, 3, 1, 1}), mk.in.randn({2, 3, 4, 5})});
  CHECK_GRADCHECK([](const V& x) { return mul(x[0], x[1]); }, {mk.in.randn({4, 1}), mk.in.randn({4, 7})});
  CHECK_GRADCHECK([](const V& x) { return mul(x[0], x[1]); }, {mk.in.randn({3, 1}), mk.in.randn({2, 3, 5})});
  Tensor fixed = mk.in.randn({2, 3, 4, 5}).detach();
  CHECK_GRADCHECK([fixed](const V& x) { return mul(x[0], fixed); }, {mk.in.randn({2, 3, 1, 1})});
  CHECK_GRADCHECK([fixed](const V& x) { return mul(fixed.narrow(3, 0, 1), x[0]); }, {mk.in.randn({2, 3, 4, 5})});
}

TEST_CASE("gradcheck scalar arithmetic and neg") {
  Maker mk;
  for (Layout l : kLayouts) {
    INFO(name_of(l));
    CHECK_GRADCHECK([](const V& x) { return add(x[0], 2.5); }, {mk(l, {3, 4})});
    CHECK_GRADCHECK([](const V& x) { return mul(x[0], -1.5); }, {mk(l, {3, 4})});
    CHECK_GRADCHECK([](const V& x) { return neg(x[0]); }, {mk(l, {3, 4})});
    CHECK_GRADCHECK([](const V& x) { return (2.0 * x[0] - 1.0) / 4.0 + (-x[0]); }, {mk(l, {3, 4})});
  }
}

// ---- elementwise functions ----

TEST_CASE("gradcheck unary functions on every layout") {
  Maker mk;
  const std::pair<std::string, Fn> any_x[] = {
      {"exp", [](const V& x) { return exp(x[0]); }},         {"tanh", [](const V& x) { return tanh(x[0]); }},
      {"sigmoid", [](const V& x) { return sigmoid(x[0]); }}, {"relu", [](const V& x) { return relu(x[0]); }},
      {"silu", [](const V& x) { return silu(x[0]); }},       {"gelu", [](const V& x) { return gelu(x[0]); }},
      {"pow 2", [](const V& x) { return pow(x[0], 2); }},    {"pow 3", [](const V& x) { return pow(x[0], 3); }},
      {"pow 0", [](const V& x) { return pow(x[0], 0); }},    {"pow 1", [](const V& x) { return pow(x[0], 1); }},
  };
  const std::pair<std::string, Fn> positive_x[] = {
      {"log", [](const V& x) { return log(x[0]); }},
      {"sqrt", [](const V& x) { return sqrt(x[0]); }},
      {"rsqrt", [](const V& x) { return rsqrt(x[0]); }},
      {"pow 0.5", [](const V& x) { return pow(x[0], 0.5); }},
      {"pow -1.5", [](const V& x) { return pow(x[0], -1.5); }},
  };
  for (Layout l : kLayouts) {
    INFO(name_of(l));
    for (const auto& op : any_x) {
      INFO(op.first);
      CHECK_GRADCHECK(op.second, {mk(l, {2, 3, 4})});
    }
    for (const auto& op : positive_x) {
      INFO(op.first);
      CHECK_GRADCHECK(op.second, {mk.in_range(l, {2, 3, 4}, 0.3, 3.0)});
    }
  }
  // on an expanded input, and through a chain
  CHECK_GRADCHECK([](const V& x) { return gelu(x[0].expand({3, 4})); }, {mk.in.randn({4})});
  CHECK_GRADCHECK([](const V& x) { return mul(tanh(x[0]), sigmoid(exp(x[0]))); }, {mk.in.randn({5})});
}

// ---- reductions ----

TEST_CASE("gradcheck sum and mean over dims, keepdim or not") {
  Maker mk;
  const std::vector<std::vector<int64_t>> dim_sets = {{0}, {1}, {-1}, {0, 2}, {1, 2}, {2, 0, 1}};
  for (Layout l : kLayouts) {
    INFO(name_of(l));
    CHECK_GRADCHECK([](const V& x) { return sum(x[0]); }, {mk(l, {2, 3, 4})});
    CHECK_GRADCHECK([](const V& x) { return mean(x[0]); }, {mk(l, {2, 3, 4})});
    for (const auto& dims : dim_sets)
      for (bool keep : {false, true}) {
        INFO("dims ", shape_str(dims), " keepdim ", keep);
        CHECK_GRADCHECK([&](const V& x) { return sum(x[0], dims, keep); }, {mk(l, {2, 3, 4})});
        CHECK_GRADCHECK([&](const V& x) { return mean(x[0], dims, keep); }, {mk(l, {2, 3, 4})});
      }
  }
  CHECK_GRADCHECK([](const V& x) { return sum(x[0].expand({3, 2, 4}), {0, 2}); }, {mk.in.randn({2, 1})});
}

TEST_CASE("gradcheck var with correction 0 and 1") {
  Maker mk;
  const std::vector<std::vector<int64_t>> dim_sets = {{0}, {-1}, {0, 2}, {0, 1, 2}};
  for (Layout l : kLayouts)
    for (const auto& dims : dim_sets)
      for (int64_t corr : {0, 1})
        for (bool keep : {false, true}) {
          INFO(name_of(l), " dims ", shape_str(dims), " correction ", corr, " keepdim ", keep);
          CHECK_GRADCHECK([&](const V& x) { return var(x[0], dims, corr, keep); }, {mk(l, {2, 3, 4})});
        }
}

TEST_CASE("gradcheck max along a dim") {
  Maker mk;
  for (Layout l : kLayouts)
    for (int64_t d : {0, 1, -1})
      for (bool keep : {false, true}) {
        INFO(name_of(l), " dim ", d, " keepdim ", keep);
        CHECK_GRADCHECK([&](const V& x) { return max(x[0], d, keep); }, {mk(l, {3, 4, 5})});
      }
}

// ---- joins ----

TEST_CASE("gradcheck cat and stack") {
  Maker mk;
  for (int64_t d : {0, 1, -1}) {
    INFO("dim ", d);
    Shape a{2, 3, 4}, b{2, 3, 4}, c{2, 3, 4};
    const int64_t dd = d < 0 ? d + 3 : d;
    b[dd] = 1, c[dd] = 2;
    CHECK_GRADCHECK([&](const V& x) { return cat(x, d); }, {mk.in.randn(a), mk.in.permuted(b), mk.in.strided(c)});
    CHECK_GRADCHECK([&](const V& x) { return stack(x, d); },
                    {mk.in.randn({2, 3, 4}), mk.in.permuted({2, 3, 4}), mk.in.strided({2, 3, 4})});
  }
  CHECK_GRADCHECK([](const V& x) { return stack(x, 3); }, {mk.in.randn({2, 3, 4}), mk.in.randn({2, 3, 4})});
  // one input twice, one constant
  Tensor k = mk.in.randn({2, 2});
  CHECK_GRADCHECK([&](const V& x) { return cat({x[0], k, x[0]}, 0); }, {mk.in.randn({1, 2})});
}

// ---- matmul, linear ----

TEST_CASE("gradcheck matmul: 2-D, batched, broadcast batch, 1-D operands") {
  Maker mk;
  const std::pair<Shape, Shape> shapes[] = {{{3, 4}, {4, 5}},
                                            {{2, 3, 4}, {2, 4, 5}},
                                            {{2, 1, 3, 4}, {3, 4, 2}},
                                            {{3, 4}, {2, 4, 5}},
                                            {{2, 3, 4}, {4, 2}},
                                            {{4}, {4, 3}},
                                            {{3, 4}, {4}},
                                            {{4}, {4}},
                                            {{4}, {2, 4, 3}},
                                            {{2, 3, 4}, {4}},
                                            {{1, 4}, {4, 1}},
                                            {{3, 1}, {1, 2}}};
  for (const auto& ab : shapes)
    for (Layout la : kLayouts)
      for (Layout lb : kLayouts) {
        INFO(shape_str(ab.first), " @ ", shape_str(ab.second), ": ", name_of(la), " @ ", name_of(lb));
        CHECK_GRADCHECK([](const V& x) { return matmul(x[0], x[1]); }, {mk(la, ab.first), mk(lb, ab.second)});
      }
  // a batch operand broadcast by expand (stride-0 batch dim), and a transposed view
  CHECK_GRADCHECK(
      [](const V& x) {
        return matmul(x[0].expand({3, 2, 4}), x[1]);
      },
      {mk.in.randn({2, 4}), mk.in.randn({3, 4, 2})});
  CHECK_GRADCHECK([](const V& x) { return matmul(x[0], x[0].transpose(-1, -2)); }, {mk.in.randn({2, 3, 4})});
}

TEST_CASE("gradcheck linear with and without bias") {
  Maker mk;
  for (Layout lx : kLayouts)
    for (Layout lw : kLayouts) {
      INFO("x ", name_of(lx), ", weight ", name_of(lw));
      CHECK_GRADCHECK([](const V& x) { return linear(x[0], x[1], x[2]); },
                      {mk(lx, {4, 5}), mk(lw, {3, 5}), mk(lw, {3})});
      CHECK_GRADCHECK([](const V& x) { return linear(x[0], x[1]); }, {mk(lx, {4, 5}), mk(lw, {3, 5})});
      CHECK_GRADCHECK([](const V& x) { return linear(x[0], x[1], x[2]); },
                      {mk(lx, {2, 3, 5}), mk(lw, {3, 5}), mk(lw, {3})});
    }
  CHECK_GRADCHECK([](const V& x) { return linear(x[0], x[1], x[2]); },
                  {mk.in.randn({5}), mk.in.randn({3, 5}), mk.in.randn({3})});
  // only some inputs need gradients
  Tensor w = mk.in.randn({3, 5});
  CHECK_GRADCHECK([&](const V& x) { return linear(x[0], w, x[1]); }, {mk.in.randn({4, 5}), mk.in.randn({3})});
  Tensor xc = mk.in.randn({4, 5});
  CHECK_GRADCHECK([&](const V& x) { return linear(xc, x[0]); }, {mk.in.randn({3, 5})});
}

// ---- convolution, pooling ----

TEST_CASE("gradcheck conv2d: general (im2col), 1x1, depthwise, groups, stride, padding") {
  Maker mk;
  struct Case {
    std::string what;
    Shape x, w;
    int64_t stride, pad, groups;
    bool bias;
  };
  const Case cases[] = {
      {"3x3", {2, 3, 5, 5}, {4, 3, 3, 3}, 1, 0, 1, true},
      {"3x3 stride 2 pad 1", {2, 3, 5, 6}, {4, 3, 3, 3}, 2, 1, 1, true},
      {"3x3 pad 1 no bias", {1, 2, 4, 4}, {3, 2, 3, 3}, 1, 1, 1, false},
      {"2x3 kernel stride 2", {2, 2, 5, 6}, {3, 2, 2, 3}, 2, 0, 1, true},
      {"groups 2", {2, 4, 5, 5}, {6, 2, 3, 3}, 1, 1, 2, true},
      {"depthwise", {2, 3, 5, 5}, {3, 1, 3, 3}, 1, 1, 3, true},
      {"depthwise stride 2 no bias", {2, 3, 6, 5}, {3, 1, 3, 3}, 2, 1, 3, false},
      {"depthwise 5x5 pad 2", {1, 2, 6, 6}, {2, 1, 5, 5}, 1, 2, 2, true},
      {"depthwise multiplier 2 (general path)", {2, 2, 4, 4}, {4, 1, 3, 3}, 1, 1, 2, true},
      {"1x1", {2, 3, 4, 4}, {5, 3, 1, 1}, 1, 0, 1, true},
      {"1x1 no bias", {2, 3, 4, 4}, {5, 3, 1, 1}, 1, 0, 1, false},
      {"1x1 stride 2 (general path)", {2, 3, 5, 5}, {4, 3, 1, 1}, 2, 0, 1, true},
      {"1x1 groups 3", {1, 6, 3, 3}, {3, 2, 1, 1}, 1, 0, 3, true},
  };
  for (const Case& c : cases)
    for (Layout l : kLayouts) {
      INFO(c.what, ", ", name_of(l));
      const int64_t s = c.stride, p = c.pad, g = c.groups;
      if (c.bias)
        CHECK_GRADCHECK([&](const V& x) { return conv2d(x[0], x[1], x[2], s, p, g); },
                        {mk(l, c.x), mk(l, c.w), mk(l, {c.w[0]})});
      else
        CHECK_GRADCHECK([&](const V& x) { return conv2d(x[0], x[1], Tensor(), s, p, g); }, {mk(l, c.x), mk(l, c.w)});
    }
  // channels-last input (an NHWC tensor permuted to NCHW), as a real pipeline may hand over
  Tensor nhwc = mk.in.randn({2, 4, 4, 3}).permute({0, 3, 1, 2});
  CHECK_GRADCHECK([](const V& x) { return conv2d(x[0], x[1], x[2], 1, 1); },
                  {nhwc, mk.in.randn({2, 3, 3, 3}), mk.in.randn({2})});
  // only the weight needs a gradient (a frozen input), and only the input (a frozen layer)
  Tensor xf = mk.in.randn({2, 3, 4, 4}), wf = mk.in.randn({2, 3, 3, 3});
  CHECK_GRADCHECK([&](const V& x) { return conv2d(xf, x[0], Tensor(), 1, 1); }, {mk.in.randn({2, 3, 3, 3})});
  CHECK_GRADCHECK([&](const V& x) { return conv2d(x[0], wf, Tensor(), 2, 1); }, {mk.in.randn({2, 3, 4, 4})});
}

TEST_CASE("gradcheck avg_pool2d and adaptive_avg_pool2d") {
  Maker mk;
  struct Case {
    int64_t k, s, p;
    bool include_pad;
  };
  const Case cases[] = {{2, 2, 0, true},  {3, 2, 1, true},  {3, 2, 1, false}, {3, 1, 1, true},
                        {3, 1, 1, false}, {2, 1, 1, false}, {3, 3, 0, true},  {4, 2, 2, false}};
  for (const Case& c : cases)
    for (Layout l : kLayouts) {
      INFO("kernel ", c.k, " stride ", c.s, " padding ", c.p, " count_include_pad ", c.include_pad, ", ", name_of(l));
      CHECK_GRADCHECK([&](const V& x) { return avg_pool2d(x[0], c.k, c.s, c.p, c.include_pad); },
                      {mk(l, {2, 3, 5, 6})});
    }
  for (Layout l : kLayouts) {
    INFO(name_of(l));
    CHECK_GRADCHECK([](const V& x) { return adaptive_avg_pool2d(x[0], 1); }, {mk(l, {2, 3, 4, 5})});
  }
}

// ---- softmax, losses, normalisation ----

TEST_CASE("gradcheck softmax and log_softmax along each dim") {
  Maker mk;
  for (Layout l : kLayouts)
    for (int64_t d : {0, 1, 2, -1}) {
      INFO(name_of(l), " dim ", d);
      CHECK_GRADCHECK([&](const V& x) { return softmax(x[0], d); }, {mk(l, {3, 4, 5})});
      CHECK_GRADCHECK([&](const V& x) { return log_softmax(x[0], d); }, {mk(l, {3, 4, 5})});
    }
  CHECK_GRADCHECK([](const V& x) { return softmax(x[0].expand({3, 4}), 0); }, {mk.in.randn({1, 4})});
  CHECK_GRADCHECK([](const V& x) { return log_softmax(x[0], 0); }, {mk.in.randn({6})});
}

TEST_CASE("gradcheck multi_head_attention: heads, groups, every layout of qkv and bias") {
  Maker mk;
  for (Layout l : kLayouts) {
    INFO(name_of(l));
    // 2 x 3 groups of 4 tokens, 2 heads of 3 channels: qkv (2, 3, 4, 18), bias (2, 4, 4)
    CHECK_GRADCHECK([](const V& x) { return multi_head_attention(x[0], x[1], 2, 0.7); },
                    {mk(l, {2, 3, 4, 18}), mk(l, {2, 4, 4})});
    CHECK_GRADCHECK([](const V& x) { return multi_head_attention(x[0], x[1], 1, 0.5); },
                    {mk(l, {5, 6}), mk(l, {1, 5, 5})});
  }
}

TEST_CASE("gradcheck cross_entropy, with and without label smoothing") {
  Maker mk;
  Tensor target = idx({2, 0, 4, 4}, {4});
  for (Layout l : kLayouts)
    for (double e : {0.0, 0.1, 0.5, 1.0}) {
      INFO(name_of(l), " label_smoothing ", e);
      CHECK_GRADCHECK([&](const V& x) { return cross_entropy(x[0], target, e); }, {mk(l, {4, 5})});
    }
  // through a scaled loss: the incoming gradient is not 1
  CHECK_GRADCHECK([&](const V& x) { return mul(cross_entropy(x[0], target, 0.1), 3.0); }, {mk.in.randn({4, 5})});
  // a non-contiguous target
  Tensor t2 = idx({1, 9, 0, 9, 2, 9}, {3, 2}).select(1, 0);
  CHECK_GRADCHECK([&](const V& x) { return cross_entropy(x[0], t2, 0.2); }, {mk.in.randn({3, 3})});
}

TEST_CASE("gradcheck layer_norm with and without affine parameters") {
  Maker mk;
  for (Layout l : kLayouts) {
    INFO(name_of(l));
    CHECK_GRADCHECK([](const V& x) { return layer_norm(x[0], x[1], x[2]); },
                    {mk(l, {3, 4, 5}), mk(l, {5}), mk(l, {5})});
    CHECK_GRADCHECK([](const V& x) { return layer_norm(x[0], Tensor(), Tensor()); }, {mk(l, {3, 5})});
    CHECK_GRADCHECK([](const V& x) { return layer_norm(x[0], x[1], Tensor(), 1e-3); }, {mk(l, {2, 6}), mk(l, {6})});
    CHECK_GRADCHECK([](const V& x) { return layer_norm(x[0], Tensor(), x[1]); }, {mk(l, {2, 6}), mk(l, {6})});
  }
  CHECK_GRADCHECK([](const V& x) { return layer_norm(x[0], x[1], x[2]); },
                  {mk.in.randn({4}), mk.in.randn({4}), mk.in.randn({4})});
}

TEST_CASE("gradcheck batch_norm in training and evaluation") {
  Maker mk;
  for (Layout l : kLayouts) {
    INFO(name_of(l));
    Tensor rm = zeros({3}, DType::Float64), rv = ones({3}, DType::Float64);
    CHECK_GRADCHECK([&](const V& x) { return batch_norm(x[0], rm, rv, x[1], x[2], true, 0.1, 1e-5); },
                    {mk(l, {2, 3, 2, 3}), mk(l, {3}), mk(l, {3})});
    CHECK_GRADCHECK(
        [](const V& x) { return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5); },
        {mk(l, {4, 3})});
    CHECK_GRADCHECK([](const V& x) { return batch_norm(x[0], Tensor(), Tensor(), x[1], Tensor(), true, 0.1, 1e-3); },
                    {mk(l, {3, 2, 5}), mk(l, {2})});
    Tensor erm = mk.in.randn({3}), erv = mk.in.uniform({3}, 0.5, 2.0);
    CHECK_GRADCHECK([&](const V& x) { return batch_norm(x[0], erm, erv, x[1], x[2], false, 0.1, 1e-5); },
                    {mk(l, {2, 3, 2, 2}), mk(l, {3}), mk(l, {3})});
    CHECK_GRADCHECK([&](const V& x) { return batch_norm(x[0], erm, erv, Tensor(), Tensor(), false, 0.1, 1e-5); },
                    {mk(l, {2, 3})});
    // batch_norm_gelu: the same, with GELU fused after it
    CHECK_GRADCHECK([&](const V& x) { return batch_norm_gelu(x[0], rm, rv, x[1], x[2], true, 0.1, 1e-5); },
                    {mk(l, {2, 3, 2, 3}), mk(l, {3}), mk(l, {3})});
    CHECK_GRADCHECK([&](const V& x) { return batch_norm_gelu(x[0], erm, erv, x[1], x[2], false, 0.1, 1e-5); },
                    {mk(l, {2, 3, 2, 2}), mk(l, {3}), mk(l, {3})});
  }
}

// ---- dropout ----

TEST_CASE("gradcheck dropout and drop_path with a fixed mask") {
  Maker mk;
  for (double p : {0.3, 0.5}) {
    INFO("p ", p);
    // reseeding inside f draws the same mask on every call, so f is a fixed linear map
    CHECK_GRADCHECK(
        [&](const V& x) {
          Generator g(11);
          return dropout(x[0], p, true, g);
        },
        {mk.in.permuted({3, 4})});
    CHECK_GRADCHECK(
        [&](const V& x) {
          Generator g(12);
          return drop_path(x[0], p, true, g);
        },
        {mk.in.strided({6, 2, 3})});
  }
  Generator g0(0);
  CHECK_GRADCHECK([&](const V& x) { return dropout(x[0], 0.5, false, g0); }, {mk.in.randn({4})});
}

TEST_CASE("add_drop_path: x + drop_path(f) in one pass, the same masks, gradients through both") {
  Maker mk;
  for (double p : {0.3, 0.6}) {
    INFO("p ", p);
    CHECK_GRADCHECK(
        [&](const V& x) {
          Generator g(13);
          return add_drop_path(x[0], x[1], p, true, g);
        },
        {mk.in.randn({6, 2, 3}), mk.in.randn({6, 2, 3})});
    CHECK_GRADCHECK(  // strided operands: the two ops
        [&](const V& x) {
          Generator g(14);
          return add_drop_path(x[0], x[1], p, true, g);
        },
        {mk.in.randn({5, 3}), mk.in.permuted({5, 3})});
  }
  // the same values as the two ops from the same seed (float32: one rounding less, so to within one ulp),
  // and the generator left where drop_path leaves it
  for (DType dt : {DType::Float64, DType::Float32}) {
    Generator gi(3);
    Tensor x = randn({16, 3, 5}, gi, dt), f = randn({16, 3, 5}, gi, dt);
    Generator g1(21), g2(21);
    Tensor fused = add_drop_path(x, f, 0.5, true, g1), two = add(x, drop_path(f, 0.5, true, g2));
    mg::testing::check_close(fused, two, dt == DType::Float64 ? 1e-15 : 1e-6, 1e-6);
    CHECK(g1.uniform() == g2.uniform());
    Tensor dropped = sub(fused, x);  // some samples dropped, some kept, at p 0.5 over 16 samples
    int zeros = 0;
    for (int64_t s = 0; s < 16; ++s) zeros += sum(mul(dropped.narrow(0, s, 1), dropped.narrow(0, s, 1))).item() == 0.0;
    CHECK(zeros > 0);
    CHECK(zeros < 16);
  }
  Generator ge(5);  // an empty batch
  CHECK(add_drop_path(zeros({0, 3}), zeros({0, 3}), 0.5, true, ge).shape() == Shape{0, 3});
  Generator g0(0);  // eval, or p 0: a plain add
  CHECK_GRADCHECK([&](const V& x) { return add_drop_path(x[0], x[1], 0.5, false, g0); },
                  {mk.in.randn({4}), mk.in.randn({4})});
}

// ---- token rows (MaxViT's partitions) ----

TEST_CASE("gradcheck to_token_rows and from_token_rows") {
  Maker mk;
  const std::vector<int64_t> rows = {3, 0, 5, 1, 4, 2};  // a 2 x 3 map
  for (Layout l : kLayouts) {
    INFO(name_of(l));
    CHECK_GRADCHECK([&](const V& x) { return to_token_rows(x[0], rows); }, {mk(l, {2, 3, 2, 3})});
    CHECK_GRADCHECK([&](const V& x) { return from_token_rows(x[0], rows, 2, 3); }, {mk(l, {2, 6, 3})});
  }
}

// ---- indexing ----

TEST_CASE("gradcheck index_select and gather (repeated indices add up)") {
  Maker mk;
  for (Layout l : kLayouts) {
    INFO(name_of(l));
    CHECK_GRADCHECK([](const V& x) { return index_select(x[0], 0, idx({2, 0, 2, 1}, {4})); }, {mk(l, {3, 4})});
    CHECK_GRADCHECK([](const V& x) { return index_select(x[0], 1, idx({3, 3, 0}, {3})); }, {mk(l, {2, 4, 3})});
    CHECK_GRADCHECK([](const V& x) { return index_select(x[0], -1, idx({1}, {1})); }, {mk(l, {2, 3, 2})});
    CHECK_GRADCHECK([](const V& x) { return gather(x[0], 1, idx({0, 0, 3, 2, 1, 1}, {2, 3})); }, {mk(l, {2, 4})});
    CHECK_GRADCHECK([](const V& x) { return gather(x[0], 0, idx({1, 0, 1, 1, 2, 0}, {2, 3})); }, {mk(l, {3, 3})});
    CHECK_GRADCHECK(
        [](const V& x) {
          return gather(x[0], 2, idx({0, 1, 1, 0, 1, 1, 0, 0}, {2, 2, 2}));
        },
        {mk(l, {2, 2, 3})});
  }
}

// ---- views ----

TEST_CASE("gradcheck views: permute, transpose, narrow, select, expand, reshape, view, squeeze, split") {
  Maker mk;
  const std::pair<std::string, Fn> views[] = {
      {"permute",
       [](const V& x) {
         return x[0].permute({2, 0, 1});
       }},
      {"transpose", [](const V& x) { return x[0].transpose(0, 2); }},
      {"narrow", [](const V& x) { return x[0].narrow(1, 1, 2); }},
      {"narrow negative start", [](const V& x) { return x[0].narrow(2, -2, 2); }},
      {"select", [](const V& x) { return x[0].select(2, 1); }},
      {"expand",
       [](const V& x) {
         return x[0].narrow(1, 0, 1).expand({2, 2, 3, 4});
       }},
      {"reshape",
       [](const V& x) {
         return x[0].reshape({4, 6});
       }},
      {"reshape after permute",
       [](const V& x) {
         return x[0].permute({1, 0, 2}).reshape({-1});
       }},
      {"view",
       [](const V& x) {
         return x[0].contiguous().view({6, 4});
       }},
      {"flatten", [](const V& x) { return x[0].flatten(1); }},
      {"unsqueeze squeeze", [](const V& x) { return x[0].unsqueeze(1).squeeze(1).unsqueeze(-1); }},
      {"chunk", [](const V& x) { return mul(x[0].chunk(2, 2)[0], x[0].chunk(2, 2)[1]); }},
      {"split",
       [](const V& x) {
         auto p = x[0].split(2, 1);
         return cat({p[1], p[0]}, 1);
       }},
      {"contiguous", [](const V& x) { return x[0].transpose(0, 1).contiguous(); }},
      {"clone", [](const V& x) { return x[0].clone(); }},
      {"view of view of view",
       [](const V& x) {
         return x[0].permute({2, 1, 0}).narrow(0, 1, 2).select(1, 2).expand({3, 2, 2});
       }},
  };
  for (const auto& v : views)
    for (Layout l : kLayouts) {
      INFO(v.first, ", ", name_of(l));
      CHECK_GRADCHECK(v.second, {mk(l, {2, 3, 4})});
    }
  // float32 -> float64 and back: the gradient converts with it
  CHECK_GRADCHECK([](const V& x) { return mul(x[0].to(DType::Float32).to(DType::Float64), x[0]); }, {mk.in.randn({3})},
                  1e-3, 1e-3, 1e-3);
}

// ---- expanded inputs: stride-0 dims reach every op's kernel ----

TEST_CASE("gradcheck ops on expanded (stride 0) inputs") {
  // The leaf has one value per element; the op sees it broadcast, and expand's backward sums back.
  Maker mk;
  const std::pair<std::string, Fn> cases[] = {
      {"conv2d, batch expanded",
       [](const V& x) {
         return conv2d(x[0].expand({2, 2, 4, 4}), x[1], Tensor(), 1, 1);
       }},
      {"conv2d depthwise, width expanded",
       [](const V& x) {
         return conv2d(x[0].expand({2, 2, 4, 5}), x[1], Tensor(), 1, 1, 2);
       }},
      {"avg_pool2d",
       [](const V& x) {
         return avg_pool2d(x[0].expand({2, 2, 4, 4}), 3, 2, 1, false);
       }},
      {"linear",
       [](const V& x) {
         return linear(x[3].expand({3, 4}), x[2]);
       }},
      {"layer_norm",
       [](const V& x) {
         return layer_norm(x[3].expand({2, 3, 4}), Tensor(), Tensor());
       }},
      {"batch_norm",
       [](const V& x) {
         return batch_norm(x[0].expand({3, 2, 4, 4}), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
       }},
      {"log_softmax",
       [](const V& x) {
         return log_softmax(x[3].expand({2, 3, 4}), 1);
       }},
      {"cross_entropy",
       [](const V& x) {
         return cross_entropy(x[3].narrow(0, 0, 1).expand({3, 4}), Tensor::from_vector_i64({0, 3, 1}, {3}), 0.1);
       }},
      {"index_select",
       [](const V& x) {
         return index_select(x[3].expand({2, 3, 4}), 2, idx({3, 0, 3}, {3}));
       }},
      {"gather",
       [](const V& x) {
         return gather(x[3].expand({2, 3, 4}), 0, idx({1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1}, {1, 3, 4}));
       }},
      {"cat",
       [](const V& x) {
         return cat({x[3].expand({2, 3, 4}), x[2].unsqueeze(0)}, 0);
       }},
      {"var",
       [](const V& x) {
         return var(x[3].expand({2, 3, 4}), {0, 2});
       }},
      {"matmul",
       [](const V& x) {
         return matmul(x[3].expand({3, 4}), x[2].transpose(0, 1));
       }},
  };
  for (const auto& c : cases) {
    INFO(c.first);
    // x[0] (1, 2, 4, 1) for the NCHW ops, x[1] their weight (depthwise or not), x[2] (3, 4), x[3] (1, 4)
    Tensor w = c.first.find("depthwise") != std::string::npos ? mk.in.randn({2, 1, 3, 3}) : mk.in.randn({3, 2, 3, 3});
    CHECK_GRADCHECK(c.second, {mk.in.randn({1, 2, 4, 1}), w, mk.in.randn({3, 4}), mk.in.randn({1, 4})});
  }
}

// ---- a small network: every op's gradient composed ----

TEST_CASE("gradcheck a conv, batch-norm, gelu, pool, linear, cross-entropy chain") {
  Maker mk;
  Tensor target = idx({1, 0, 2}, {3});
  CHECK_GRADCHECK(
      [&](const V& p) {
        Tensor h = conv2d(p[0], p[1], p[2], 1, 1);
        h = gelu(batch_norm(h, Tensor(), Tensor(), p[3], p[4], true, 0.1, 1e-5));
        h = adaptive_avg_pool2d(avg_pool2d(h, 2, 2), 1).flatten(1);
        return cross_entropy(linear(h, p[5], p[6]), target, 0.1);
      },
      {mk.in.randn({3, 2, 4, 4}), mk.in.randn({4, 2, 3, 3}), mk.in.randn({4}), mk.in.randn({4}), mk.in.randn({4}),
       mk.in.randn({3, 4}), mk.in.randn({3})});
}
