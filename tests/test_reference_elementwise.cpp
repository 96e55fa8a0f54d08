// The fast and the reference kernels (MAXGRAD_KERNELS=fast|reference) give the same values, forward
// and backward, for the elementwise ops, reductions, softmax, cross_entropy, matmul and linear,
// dropout, indexing, cat and the tensor copies; shapes chosen to take every special case of the fast
// path (contiguous and strided rows, broadcast rows, squeeze-excitation's row scale, sums by columns
// and by channels, the GEMM splits and the short-k kernel). Then gradchecks on the reference path.
#include <doctest/doctest.h>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/generator.h"
#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/ops.h"
#include "gradcheck.h"
#include "helpers.h"

using namespace mg;
using V = std::vector<Tensor>;
using Fn = std::function<Tensor(const V&)>;

namespace {

struct Run {
  Tensor out;
  V grads;  // undefined for an input that is not floating
};

// f on `path`, and the gradients of sum(f(xs) * r) for a fixed random r.
Run run_on(KernelPath path, const Fn& f, V xs) {
  KernelPathGuard guard(path);
  for (Tensor& t : xs)
    if (is_floating(t.dtype())) t.requires_grad_(true), t.zero_grad();
  Run res;
  res.out = f(xs);
  if (is_floating(res.out.dtype()) && res.out.requires_grad()) {
    Generator g(99);
    sum(mul(res.out, randn(res.out.shape(), g, res.out.dtype()))).backward();
  }
  for (Tensor& t : xs) res.grads.push_back(is_floating(t.dtype()) ? t.grad() : Tensor());
  return res;
}

// f gives the same values (within the tolerance of the dtype, times `scale`: float32 sums of many
// terms differ by more) on both paths, forward and backward.
void check_paths(const Fn& f, const V& xs, double scale = 1) {
  const Run fast = run_on(KernelPath::fast, f, xs), ref = run_on(KernelPath::reference, f, xs);
  const bool f32 = fast.out.dtype() == DType::Float32;
  const double rtol = (f32 ? 1e-5 : 1e-10) * scale, atol = (f32 ? 1e-5 : 1e-10) * scale;
  if (!is_floating(fast.out.dtype())) {
    CHECK(mg::testing::bitwise_equal(fast.out, ref.out));
    return;
  }
  mg::testing::check_close(fast.out, ref.out, rtol, atol);
  for (size_t i = 0; i < xs.size(); ++i) {
    INFO("gradient of input ", i);
    REQUIRE(fast.grads[i].defined() == ref.grads[i].defined());
    if (fast.grads[i].defined()) mg::testing::check_close(fast.grads[i], ref.grads[i], rtol, atol);
  }
}

Tensor idx(const std::vector<int64_t>& v, const Shape& s) { return Tensor::from_vector_i64(v, s); }

}  // namespace

TEST_CASE("reference path: add, sub, mul, div, contiguous, strided, broadcast and by a value per row") {
  mg::testing::Inputs in(1);
  const std::pair<std::string, Fn> ops[] = {
      {"add", [](const V& x) { return add(x[0], x[1]); }},
      {"sub", [](const V& x) { return sub(x[0], x[1]); }},
      {"mul", [](const V& x) { return mul(x[0], x[1]); }},
      {"div", [](const V& x) { return div(x[0], x[1]); }},
  };
  for (DType dt : {DType::Float64, DType::Float32})
    for (const auto& op : ops) {
      INFO(op.first, " ", std::string(dtype_name(dt)));
      check_paths(op.second, {in.randn({3, 40}, dt), in.uniform({3, 40}, 0.5, 2, dt)});
      check_paths(op.second, {in.permuted({3, 4, 5}, dt), in.strided({3, 4, 5}, dt)});
      check_paths(op.second, {in.randn({4, 6, 5}, dt), in.uniform({6, 1}, 0.5, 2, dt)});  // a row of one b
      check_paths(op.second, {in.randn({4, 1, 5}, dt), in.uniform({3, 5}, 0.5, 2, dt)});  // one a against rows
      // squeeze-excitation's scale, either side, and a matrix's rows (mul's one-pass backward)
      check_paths(op.second, {in.randn({2, 3, 1, 1}, dt), in.uniform({2, 3, 4, 5}, 0.5, 2, dt)});
      check_paths(op.second, {in.randn({2, 3, 4, 5}, dt), in.uniform({2, 3, 1, 1}, 0.5, 2, dt)});
      check_paths(op.second, {in.randn({4, 7}, dt), in.uniform({4, 1}, 0.5, 2, dt)});
    }
  check_paths([](const V& x) { return mul(neg(add(x[0], 2.5)), -1.5); }, {in.strided({3, 4})});
}

TEST_CASE("reference path: unary functions (std::exp and std::erf against the fast polynomials)") {
  mg::testing::Inputs in(2);
  const std::pair<std::string, Fn> ops[] = {
      {"exp", [](const V& x) { return exp(x[0]); }},         {"tanh", [](const V& x) { return tanh(x[0]); }},
      {"sigmoid", [](const V& x) { return sigmoid(x[0]); }}, {"relu", [](const V& x) { return relu(x[0]); }},
      {"silu", [](const V& x) { return silu(x[0]); }},       {"gelu", [](const V& x) { return gelu(x[0]); }},
  };
  const std::pair<std::string, Fn> positive[] = {
      {"log", [](const V& x) { return log(x[0]); }},
      {"sqrt", [](const V& x) { return sqrt(x[0]); }},
      {"rsqrt", [](const V& x) { return rsqrt(x[0]); }},
      {"pow", [](const V& x) { return pow(x[0], 1.7); }},
  };
  for (DType dt : {DType::Float64, DType::Float32}) {
    for (const auto& op : ops) {
      INFO(op.first, " ", std::string(dtype_name(dt)));
      check_paths(op.second, {in.randn({5, 70}, dt)});
      check_paths(op.second, {in.permuted({3, 4, 5}, dt)});
    }
    for (const auto& op : positive) {
      INFO(op.first, " ", std::string(dtype_name(dt)));
      check_paths(op.second, {in.uniform({5, 70}, 0.5, 3, dt)});
    }
  }
  // the switch is taken: float32 exp is the polynomial on one path, the C library's on the other
  Tensor x = in.randn({1000}, DType::Float32);
  Tensor fast = exp(x), ref;
  {
    KernelPathGuard guard(KernelPath::reference);
    ref = exp(x);
  }
  CHECK_FALSE(mg::testing::bitwise_equal(fast, ref));
  // gelu near 0, where the fast backward takes Phi(x) from the series instead of y / x
  check_paths([](const V& x) { return gelu(mul(x[0], 1e-4)); }, {in.randn({50}, DType::Float32)});
}

TEST_CASE("reference path: sum, mean, var, max, argmax over every layout sum takes") {
  mg::testing::Inputs in(3);
  for (DType dt : {DType::Float64, DType::Float32}) {
    INFO(std::string(dtype_name(dt)));
    check_paths([](const V& x) { return sum(x[0], {0}); }, {in.randn({37, 30}, dt)});            // reduced prefix
    check_paths([](const V& x) { return sum(x[0], {0}); }, {in.randn({3000, 3}, dt)});           // blocks of rows
    check_paths([](const V& x) { return sum(x[0], {0, 2, 3}); }, {in.randn({5, 3, 4, 9}, dt)});  // kept middle
    check_paths([](const V& x) { return sum(x[0], {0, 3, 4}); }, {in.randn({2, 6, 5, 7, 3}, dt)});
    check_paths([](const V& x) { return sum(x[0], {1}, true); }, {in.randn({4, 50, 3}, dt)});  // by rows
    check_paths([](const V& x) { return sum(x[0]); }, {in.permuted({3, 4, 5}, dt)});
    check_paths([](const V& x) { return mean(x[0], {-1}); }, {in.strided({3, 4, 5}, dt)});
    check_paths([](const V& x) { return var(x[0], {0, 2}); }, {in.randn({3, 4, 5}, dt)});
    check_paths([](const V& x) { return max(x[0], 1); }, {in.permuted({3, 4, 5}, dt)});
    check_paths([](const V& x) { return argmax(x[0], 0, true); }, {in.strided({6, 4, 5}, dt)});
  }
}

TEST_CASE("reference path: softmax, log_softmax and cross_entropy") {
  mg::testing::Inputs in(4);
  for (DType dt : {DType::Float64, DType::Float32}) {
    INFO(std::string(dtype_name(dt)));
    check_paths([](const V& x) { return softmax(x[0], -1); }, {in.randn({6, 49}, dt)});
    check_paths([](const V& x) { return softmax(x[0], 1); }, {in.permuted({2, 5, 3}, dt)});
    check_paths([](const V& x) { return log_softmax(x[0], -1); }, {in.randn({6, 10}, dt)});
    check_paths([](const V& x) { return log_softmax(x[0], 0); }, {in.strided({4, 3}, dt)});
    for (double e : {0.0, 0.1})
      check_paths([e](const V& x) { return cross_entropy(x[0], x[1], e); },
                  {in.randn({5, 10}, dt), idx({0, 9, 3, 3, 7}, {5})});
  }
}

TEST_CASE("reference path: matmul and linear on every way the fast GEMM cuts a product") {
  mg::testing::Inputs in(5);
  auto mm = [](const V& x) { return matmul(x[0], x[1]); };
  for (DType dt : {DType::Float64, DType::Float32}) {
    INFO(std::string(dtype_name(dt)));
    check_paths(mm, {in.randn({3, 4}, dt), in.randn({4, 5}, dt)});
    check_paths(mm, {in.randn({2, 3, 4, 5}, dt), in.randn({2, 3, 5, 6}, dt)});  // batched
    check_paths(mm, {in.randn({4, 5}, dt), in.randn({2, 5, 3}, dt)});           // broadcast batch
    check_paths(mm, {in.permuted({3, 5}, dt), in.strided({5, 4}, dt)});         // transposed, strided
    check_paths(mm, {in.randn({4}, dt), in.randn({4, 3}, dt)});                 // 1-D operands
    check_paths(mm, {in.randn({3, 4}, dt), in.randn({4}, dt)});
    check_paths(mm, {in.randn({160, 48}, dt), in.randn({48, 140}, dt)});  // blocks of rows
    // blocks of columns; the input gradient sums 400 float products (OpenBLAS's order differs by CPU)
    check_paths(mm, {in.randn({40, 72}, dt), in.randn({72, 400}, dt)}, 10);
    check_paths(mm, {in.randn({16, 4096}, dt), in.randn({4096, 16}, dt)}, 10);  // slices of k
    check_paths(mm, {in.randn({64, 32}, dt), in.randn({32, 64}, dt)});          // float: gemm_small_k
    check_paths([](const V& x) { return linear(x[0], x[1], x[2]); },
                {in.randn({2, 100, 32}, dt), in.randn({96, 32}, dt), in.randn({96}, dt)});
    check_paths([](const V& x) { return linear(x[0], x[1]); }, {in.strided({7, 6}, dt), in.randn({5, 6}, dt)});
    check_paths([](const V& x) { return linear(x[0], x[1], x[2]); },
                {in.randn({300, 64}, dt), in.randn({200, 64}, dt), in.randn({200}, dt)}, 10);
  }
}

TEST_CASE("reference path: dropout, drop_path and add_drop_path draw the same masks") {
  mg::testing::Inputs in(6);
  for (DType dt : {DType::Float64, DType::Float32}) {
    INFO(std::string(dtype_name(dt)));
    check_paths(
        [](const V& x) {
          Generator g(7);
          return dropout(x[0], 0.3, true, g);
        },
        {in.randn({4, 50}, dt)});
    check_paths(
        [](const V& x) {
          Generator g(8);
          return drop_path(x[0], 0.5, true, g);
        },
        {in.randn({6, 3, 4}, dt)});
    for (bool contiguous : {true, false})
      check_paths(
          [](const V& x) {
            Generator g(9);
            return add_drop_path(x[0], x[1], 0.5, true, g);
          },
          {in.randn({8, 3, 40}, dt), contiguous ? in.randn({8, 3, 40}, dt) : in.strided({8, 3, 40}, dt)});
  }
}

TEST_CASE("reference path: index_select, gather, cat, stack and the tensor copies") {
  mg::testing::Inputs in(7);
  for (DType dt : {DType::Float64, DType::Float32}) {
    INFO(std::string(dtype_name(dt)));
    check_paths([](const V& x) { return index_select(x[0], 1, x[1]); },
                {in.permuted({3, 5, 2}, dt), idx({4, 0, 4}, {3})});
    check_paths([](const V& x) { return gather(x[0], 1, x[1]); },
                {in.randn({2, 4}, dt), idx({3, 3, 0, 1, 2, 0}, {2, 3})});
    check_paths(
        [](const V& x) {
          return cat({x[0], x[1]}, 1);
        },
        {in.strided({3, 2, 4}, dt), in.permuted({3, 5, 4}, dt)});
    check_paths([](const V& x) { return stack({x[0], x[1]}, 0); }, {in.randn({3, 4}, dt), in.strided({3, 4}, dt)});
    check_paths([](const V& x) { return x[0].permute({2, 0, 1}).contiguous(); }, {in.strided({3, 4, 5}, dt)});
    check_paths([](const V& x) { return x[0].to(DType::Float64); }, {in.permuted({3, 4}, dt)});
  }
  // copy_ (broadcast, converted), fill_, add_ (contiguous, strided, a broadcast row), mul_ on both paths
  for (KernelPath path : {KernelPath::fast, KernelPath::reference}) {
    KernelPathGuard guard(path);
    Tensor dst = zeros({3, 4, 5}), src = Tensor::from_vector({1, 2, 3, 4, 5}, {5}, DType::Float64);
    dst.permute({2, 0, 1}).narrow(1, 1, 2).fill_(7);
    dst.copy_(src);
    mg::testing::check_close(dst, src.expand({3, 4, 5}), 0, 0);
    dst.fill_(1).add_(src, 2.0).mul_(0.5);
    mg::testing::check_close(dst, add(mul(src, 1.0), 0.5).expand({3, 4, 5}), 0, 0);
    Tensor strided = in.strided({3, 4, 5});
    Tensor before = strided.clone();
    strided.add_(src.expand({4, 5}), -1.0);
    mg::testing::check_close(strided, sub(before, src), 1e-15, 0);
  }
}

TEST_CASE("gradcheck on the reference path") {
  KernelPathGuard guard(KernelPath::reference);
  mg::testing::Inputs in(8);
  CHECK_GRADCHECK([](const V& x) { return div(mul(x[0], x[1]), add(x[1], 3.0)); },
                  {in.permuted({3, 4}), in.uniform({4}, 0.5, 2)});
  CHECK_GRADCHECK([](const V& x) { return mul(x[0], x[1]); }, {in.randn({2, 3, 1, 1}), in.randn({2, 3, 4, 5})});
  CHECK_GRADCHECK([](const V& x) { return gelu(silu(sigmoid(tanh(exp(x[0]))))); }, {in.strided({3, 4})});
  CHECK_GRADCHECK([](const V& x) { return pow(rsqrt(sqrt(log(x[0]))), 1.5); }, {in.uniform({3, 4}, 1.5, 3)});
  CHECK_GRADCHECK([](const V& x) { return relu(x[0]); }, {in.uniform({10}, 0.1, 1)});
  CHECK_GRADCHECK([](const V& x) { return var(sum(x[0], {0, 2, 3}, true), {1}); }, {in.randn({2, 3, 2, 2})});
  CHECK_GRADCHECK([](const V& x) { return max(mean(x[0], {0}), 1); }, {in.permuted({3, 4, 5})});
  CHECK_GRADCHECK([](const V& x) { return log_softmax(softmax(x[0], 0), 1); }, {in.randn({3, 4})});
  CHECK_GRADCHECK([](const V& x) { return cross_entropy(x[0], x[1], 0.1); }, {in.randn({3, 5}), idx({1, 4, 0}, {3})});
  CHECK_GRADCHECK([](const V& x) { return matmul(x[0], x[1].transpose(-1, -2)); },
                  {in.randn({2, 3, 4}), in.randn({5, 4})});
  CHECK_GRADCHECK([](const V& x) { return linear(x[0], x[1], x[2]); },
                  {in.randn({2, 3, 4}), in.randn({5, 4}), in.randn({5})});
  CHECK_GRADCHECK(
      [](const V& x) {
        Generator g(3);
        return add_drop_path(x[0], x[1], 0.5, true, g);
      },
      {in.randn({4, 3}), in.randn({4, 3})});
  CHECK_GRADCHECK(
      [](const V& x) {
        return cat({index_select(x[0], 0, idx({2, 0, 2}, {3})), x[1]}, 1);
      },
      {in.randn({3, 2}), in.randn({3, 4})});
  CHECK_GRADCHECK([](const V& x) { return gather(x[0], 0, idx({2, 0, 1, 1}, {2, 2})); }, {in.randn({3, 2})});
}
