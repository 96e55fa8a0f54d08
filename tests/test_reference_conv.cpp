// The two kernel paths of the convolution and pooling ops give the same values: conv2d and
// avg_pool2d (and adaptive_avg_pool2d) run forward and backward with MAXGRAD_KERNELS=fast and
// =reference (core/kernel_path.h) on shapes that take every fast special case (depthwise 3x3 in
// registers at stride 1 and 2, depthwise phase planes, 1x1 per sample and in blocks of samples, the
// shifted-row stem path, im2col in blocks of rows, groups, several weight-gradient partial sums; the
// 3x3 stride-2 pooling passes and the general ones), on contiguous and non-contiguous inputs. The
// reference loops themselves are checked against float64 central differences.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/core/reference/conv.h"
#include "gradcheck.h"
#include "helpers.h"

using namespace mg;
using V = std::vector<Tensor>;
using Fn = std::function<Tensor(const V&)>;

namespace {

// f's output and the gradients of sum(f(inputs) * r) for its inputs, on one path.
V run(KernelPath path, const Fn& f, const V& inputs, uint64_t seed) {
  KernelPathGuard guard(path);
  V leaves;
  for (const Tensor& t : inputs) leaves.push_back(t.detach().requires_grad_());
  Tensor y = f(leaves);
  Generator gen(seed);
  Tensor r = randn(y.shape(), gen, y.dtype());
  sum(mul(y, r)).backward();
  V out{y.detach()};
  for (const Tensor& t : leaves) out.push_back(t.grad());
  return out;
}

// Both paths agree on the output and every gradient: float64 to ~1e-10, float32 to ~1e-5 (relative,
// with an absolute floor for values that cancel to near zero).
void check_paths(const Fn& f, const V& inputs) {
  const bool f64 = inputs[0].dtype() == DType::Float64;
  const double rtol = f64 ? 1e-10 : 1e-5, atol = f64 ? 1e-10 : 1e-4;
  const V fast = run(KernelPath::fast, f, inputs, 5), ref = run(KernelPath::reference, f, inputs, 5);
  for (size_t i = 0; i < fast.size(); ++i) {
    INFO((i == 0 ? std::string("output") : "gradient of input " + std::to_string(i - 1)));
    mg::testing::check_close(fast[i], ref[i], rtol, atol);
  }
}

enum class Layout { Contiguous, Permuted, Strided };

Tensor make(mg::testing::Inputs& in, Layout l, const Shape& s, DType dt) {
  switch (l) {
    case Layout::Permuted: return in.permuted(s, dt);
    case Layout::Strided: return in.strided(s, dt);
    default: return in.randn(s, dt);
  }
}

struct ConvCase {
  std::string what;
  Shape x, w;
  int64_t stride, pad, groups;
  bool bias;
};

// Each names the fast path it takes (core/kernels/conv2d.h).
const ConvCase kConvCases[] = {
    {"depthwise 3x3 stride 1 (registers)", {2, 4, 8, 8}, {4, 1, 3, 3}, 1, 1, 4, true},
    {"depthwise 3x3 stride 2 (registers)", {2, 3, 16, 16}, {3, 1, 3, 3}, 2, 1, 3, false},
    {"depthwise 3x3 on 4x4 planes (registers)", {2, 8, 4, 4}, {8, 1, 3, 3}, 1, 1, 8, true},
    {"depthwise 5x5 pad 2 (same: phase planes at stride 1)", {2, 3, 7, 6}, {3, 1, 5, 5}, 1, 2, 3, true},
    {"depthwise 3x3 stride 2 pad 0 (phase planes)", {2, 3, 9, 8}, {3, 1, 3, 3}, 2, 0, 3, true},
    {"depthwise 3x3 stride 3 on odd planes", {1, 2, 7, 7}, {2, 1, 3, 3}, 3, 1, 2, false},
    {"depthwise 2x3 kernel", {2, 2, 5, 6}, {2, 1, 2, 3}, 1, 1, 2, true},
    {"1x1, one sample per GEMM", {2, 5, 4, 4}, {6, 5, 1, 1}, 1, 0, 1, true},
    {"1x1 on small maps, blocks of samples", {12, 6, 2, 2}, {4, 6, 1, 1}, 1, 0, 1, true},
    {"1x1 on 1x1 maps (squeeze-excitation)", {9, 8, 1, 1}, {3, 8, 1, 1}, 1, 0, 1, false},
    {"3x3 pad 1, thin (shifted rows in float32)", {2, 3, 8, 8}, {8, 3, 3, 3}, 1, 1, 1, true},
    {"3x3 pad 0, thin (shifted rows in float32)", {2, 4, 6, 7}, {5, 4, 3, 3}, 1, 0, 1, false},
    {"3x3 stride 2 pad 1 (im2col)", {2, 3, 7, 6}, {4, 3, 3, 3}, 2, 1, 1, true},
    {"2x3 kernel (im2col)", {2, 2, 5, 6}, {3, 2, 2, 3}, 1, 1, 1, true},
    {"groups 2 (im2col)", {2, 4, 5, 5}, {6, 2, 3, 3}, 1, 1, 2, true},
    {"depthwise multiplier 2 (im2col)", {2, 2, 4, 4}, {4, 1, 3, 3}, 1, 1, 2, false},
    {"1x1 stride 2 (im2col)", {2, 3, 5, 5}, {4, 3, 1, 1}, 2, 0, 1, true},
    {"1x1 groups 3 (im2col)", {1, 6, 3, 3}, {3, 2, 1, 1}, 1, 0, 3, true},
    {"wide input: im2col in blocks of output rows", {1, 16, 20, 64}, {4, 16, 3, 3}, 1, 1, 1, true},
    {"11 samples: two weight-gradient partial sums", {11, 2, 5, 5}, {3, 2, 3, 3}, 2, 1, 1, true},
    {"11 samples, stride 1 (shifted rows in float32)", {11, 2, 5, 5}, {3, 2, 3, 3}, 1, 1, 1, false},
};

}  // namespace

TEST_CASE("conv2d: the fast paths and the reference loops agree, forward and backward") {
  mg::testing::Inputs in(11);
  for (DType dt : {DType::Float64, DType::Float32})
    for (const ConvCase& c : kConvCases)
      for (Layout l : {Layout::Contiguous, Layout::Permuted, Layout::Strided}) {
        INFO(c.what, ", ", std::string(dtype_name(dt)), ", layout ", static_cast<int>(l));
        const int64_t s = c.stride, p = c.pad, g = c.groups;
        if (c.bias)
          check_paths([&](const V& x) { return conv2d(x[0], x[1], x[2], s, p, g); },
                      {make(in, l, c.x, dt), make(in, l, c.w, dt), in.randn({c.w[0]}, dt)});
        else
          check_paths([&](const V& x) { return conv2d(x[0], x[1], Tensor(), s, p, g); },
                      {make(in, l, c.x, dt), make(in, l, c.w, dt)});
      }
}

TEST_CASE("reference::conv2d_backward's bias gradient is gy summed over samples and positions") {
  // the op takes the bias gradient with sum(); the reference loops can give it too
  mg::testing::Inputs in(14);
  Tensor x = in.randn({2, 4, 5, 5}), w = in.randn({6, 2, 3, 3}), gy = in.randn({2, 6, 3, 3});
  const kernels::Conv2dShape s{2, 4, 5, 5, 6, 3, 3, 2, 1, 2, 3, 3};
  Tensor gb = Tensor::empty({6}, DType::Float64);
  reference::conv2d_backward<double>(s, gy.data<double>(), x.data<double>(), w.data<double>(), nullptr, nullptr,
                                     gb.data<double>());
  mg::testing::check_close(gb, sum(gy, {0, 2, 3}), 1e-12, 1e-12);
}

TEST_CASE("conv2d: empty problems on the reference path") {
  KernelPathGuard guard(KernelPath::reference);
  for (Shape xs : {Shape{0, 2, 4, 4}, Shape{2, 0, 4, 4}}) {
    Tensor x = zeros(xs, DType::Float64).requires_grad_(), w = ones({3, xs[1], 3, 3}, DType::Float64).requires_grad_();
    Tensor y = conv2d(x, w, Tensor(), 1, 1);
    CHECK(y.shape() == Shape{xs[0], 3, 4, 4});
    for (double v : y.to_vector()) CHECK(v == 0.0);
    sum(y).backward();
    for (double v : w.grad().to_vector()) CHECK(v == 0.0);
  }
}

TEST_CASE("avg_pool2d and adaptive_avg_pool2d: the fast passes and the reference loops agree") {
  mg::testing::Inputs in(12);
  struct Case {
    Shape x;
    int64_t k, s, p;
    bool include_pad;
  };
  const Case cases[] = {
      {{2, 3, 8, 8}, 3, 2, 1, true},     // MaxViT's shortcut: the 3x3 stride-2 vector passes
      {{1, 2, 16, 16}, 3, 2, 1, false},  // the same windows, padding not counted
      {{2, 2, 4, 64}, 3, 2, 1, true},    // wide rows
      {{2, 3, 7, 7}, 3, 2, 1, true},     // odd planes: the general passes
      {{2, 3, 6, 5}, 2, 2, 0, true},    {{2, 3, 5, 6}, 3, 1, 1, false},
      {{1, 2, 6, 6}, 4, 2, 2, false},   {{1, 2, 9, 7}, 3, 3, 0, true},
  };
  for (DType dt : {DType::Float64, DType::Float32})
    for (const Case& c : cases)
      for (Layout l : {Layout::Contiguous, Layout::Permuted, Layout::Strided}) {
        INFO("kernel ", c.k, " stride ", c.s, " padding ", c.p, " count_include_pad ", c.include_pad, ", ",
             std::string(dtype_name(dt)), ", layout ", static_cast<int>(l));
        check_paths([&](const V& x) { return avg_pool2d(x[0], c.k, c.s, c.p, c.include_pad); }, {make(in, l, c.x, dt)});
      }
  for (DType dt : {DType::Float64, DType::Float32})
    check_paths([](const V& x) { return adaptive_avg_pool2d(x[0], 1); }, {make(in, Layout::Strided, {2, 3, 4, 5}, dt)});
}

TEST_CASE("gradcheck conv2d and avg_pool2d on the reference path") {
  KernelPathGuard guard(KernelPath::reference);
  mg::testing::Inputs in(13);
  for (const ConvCase& c : kConvCases) {
    if (c.x[0] * c.x[1] * c.x[2] * c.x[3] > 400) continue;  // central differences: a pass per input value
    INFO(c.what);
    const int64_t s = c.stride, p = c.pad, g = c.groups;
    CHECK_GRADCHECK([&](const V& x) { return conv2d(x[0], x[1], x[2], s, p, g); },
                    {in.permuted(c.x), in.randn(c.w), in.randn({c.w[0]})});
  }
  for (bool include_pad : {true, false}) {
    INFO("count_include_pad ", include_pad);
    CHECK_GRADCHECK([&](const V& x) { return avg_pool2d(x[0], 3, 2, 1, include_pad); }, {in.strided({2, 2, 6, 5})});
    CHECK_GRADCHECK([&](const V& x) { return avg_pool2d(x[0], 2, 1, 1, include_pad); }, {in.randn({1, 2, 4, 4})});
  }
  CHECK_GRADCHECK([](const V& x) { return adaptive_avg_pool2d(x[0], 1); }, {in.randn({2, 3, 4, 5})});
}
