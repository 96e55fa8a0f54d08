// The autograd engine: accumulation into .grad, broadcast gradients summed back, grad mode,
// detach / requires_grad_, the errors for a freed graph and for in-place writes into saved
// tensors, and the printed graph.
#include <doctest/doctest.h>

#include <functional>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"
#include "helpers.h"

using namespace mg;
using mg::testing::check_values;

namespace {
Tensor leaf(const std::vector<double>& v, const Shape& s, const char* name = "") {
  Tensor t = Tensor::from_vector(v, s);
  t.requires_grad_();
  if (*name) t.set_name(name);
  return t;
}
bool same_storage(const Tensor& a, const Tensor& b) { return a.impl().storage == b.impl().storage; }
}  // namespace

TEST_CASE("gradients accumulate over uses and over backward calls") {
  Tensor x = leaf({1, 2, 3}, {3});
  // y = x * x + x uses x three times: dy/dx = 2x + 1
  sum(add(mul(x, x), x)).backward();
  check_values(x.grad(), {3, 5, 7});
  CHECK(x.grad().is_contiguous());
  // a second graph adds into the same .grad, as PyTorch
  sum(mul(x, 3.0)).backward();
  check_values(x.grad(), {6, 8, 10});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  // a diamond: b feeds c twice through different paths; the engine waits for both
  Tensor b = exp(x);
  Tensor c = add(mul(b, b), b);
  sum(c).backward();
  std::vector<double> expect;
  for (double v : {1.0, 2.0, 3.0}) expect.push_back(2 * std::exp(2 * v) + std::exp(v));
  check_values(x.grad(), expect, 1e-6);
}

// The engine adds a later gradient into a node's first one in place when nothing else holds the
// first. add's backward hands one gradient tensor to both its inputs: when y's first gradient is
// that tensor, z still waits for it, and adding exp's gradient into it in place would change z's.
// Both operand orders, as the order nodes run in decides which gradient arrives first.
TEST_CASE("gradients shared between edges are summed without writing into each other") {
  for (bool swap : {false, true}) {
    INFO("operands swapped: ", swap);
    Tensor x = leaf({-1, 2, 3}, {3});
    Tensor y = relu(x);
    Tensor z = mul(y, 3.0);
    Tensor a = swap ? add(y, z) : add(z, y);  // one gradient tensor to z and to y
    Tensor b = exp(y);
    Tensor out = swap ? add(b, a) : add(a, b);
    Tensor g = Tensor::from_vector({1, 1, 1}, {3});
    out.backward(g);
    check_values(g, {1, 1, 1});  // the caller's gradient, not accumulated into
    std::vector<double> expect;  // d/dx (4 relu(x) + exp(relu(x)))
    for (double v : {-1.0, 2.0, 3.0}) expect.push_back(v > 0 ? 4 + std::exp(v) : 0);
    check_values(x.grad(), expect, 1e-6);
  }
}

// An elementwise backward writes dx over its incoming gradient when the engine holds that alone.
// Here add hands one gradient tensor to exp and to mul (to both in either operand order), so
// whichever runs first must leave it for the other; and the caller's gradient is never written.
TEST_CASE("an elementwise backward reuses only a gradient nothing else holds") {
  for (bool swap : {false, true}) {
    INFO("operands swapped: ", swap);
    Tensor x = leaf({-1, 0.5, 2}, {3});
    Tensor e = exp(x), m = mul(x, 2.0);
    Tensor out = swap ? add(m, e) : add(e, m);
    Tensor g = Tensor::from_vector({1, 2, 3}, {3});
    out.backward(g);
    check_values(g, {1, 2, 3});
    check_values(x.grad(), {1 * (std::exp(-1.0) + 2), 2 * (std::exp(0.5) + 2), 3 * (std::exp(2.0) + 2)}, 1e-6);
    // a chain: exp's incoming gradient comes from tanh's backward, the engine's alone, and is reused
    Tensor x2 = leaf({0.1, -0.2, 0.3}, {3});
    sum(exp(tanh(x2))).backward();
    std::vector<double> expect;
    for (double v : {0.1, -0.2, 0.3}) expect.push_back(std::exp(std::tanh(v)) * (1 - std::tanh(v) * std::tanh(v)));
    check_values(x2.grad(), expect, 1e-6);
  }
}

// The same for the normalisations and mul by a value per row, which write gx over their incoming
// gradient too: in
// (f(x) + relu(x)) * g, add hands one gradient to f and to relu, and x's gradient must be what the
// two give separately.
TEST_CASE("layer_norm, batch_norm and row-scale backwards reuse only a gradient nothing else holds") {
  Generator gen(7);
  const Tensor x0 = randn({4, 3, 2, 8}, gen), w = randn({8}, gen), b = randn({8}, gen);
  const Tensor wc = randn({3}, gen), bc = randn({3}, gen), sig = randn({4, 3, 1, 1}, gen);
  const std::vector<std::function<Tensor(const Tensor&)>> fs = {
      [&](const Tensor& x) { return layer_norm(x, w, b); },
      [&](const Tensor& x) { return batch_norm(x, Tensor(), Tensor(), wc, bc, true, 0.1, 1e-5); },
      [&](const Tensor& x) { return batch_norm_gelu(x, Tensor(), Tensor(), wc, bc, true, 0.1, 1e-5); },
      [&](const Tensor& x) { return mul(x, sig); }};  // a value per row: squeeze-excitation's scale
  for (size_t k = 0; k < fs.size(); ++k)
    for (bool swap : {false, true}) {  // which of the two runs first
      INFO("op ", k, ", operands swapped: ", swap);
      const Tensor g = randn(x0.shape(), gen);
      Tensor x = x0.detach().requires_grad_();
      Tensor s = swap ? add(relu(x), fs[k](x)) : add(fs[k](x), relu(x));
      sum(mul(s, g)).backward();  // mul's gradient is the engine's, and add shares it
      Tensor xa = x0.detach().requires_grad_(), xb = x0.detach().requires_grad_();
      sum(mul(fs[k](xa), g)).backward();
      sum(mul(relu(xb), g)).backward();
      mg::testing::check_close(x.grad(), add(xa.grad(), xb.grad()), 1e-6, 1e-6);
    }
}

TEST_CASE("backward of a non-scalar takes the output gradient; leaves that need none get none") {
  Tensor a = leaf({1, 2}, {2});
  Tensor k = Tensor::from_vector({10, 20}, {2});  // a constant
  Tensor y = mul(a, k);
  y.backward(Tensor::from_vector({1, -1}, {2}));
  check_values(a.grad(), {10, -20});
  CHECK_FALSE(k.grad().defined());
  CHECK_FALSE(k.requires_grad());
  // backward on a leaf itself: its gradient is the given one
  Tensor z = leaf({5}, {});
  z.backward();
  CHECK(z.grad().item() == 1);
}

TEST_CASE("leaf gradients never alias each other or the caller's gradient") {
  // add passes its gradient through unchanged, so without care both leaves would get the very
  // tensor the caller passed; an optimiser updating one .grad in place would change the other.
  Tensor a = leaf({1, 2}, {2}), b = leaf({3, 4}, {2});
  Tensor g = Tensor::from_vector({1, 1}, {2});
  add(a, b).backward(g);
  CHECK_FALSE(same_storage(a.grad(), b.grad()));
  CHECK_FALSE(same_storage(a.grad(), g));
  {
    NoGradGuard ng;
    a.grad().mul_(5);  // weight decay, gradient clipping, ...
  }
  check_values(b.grad(), {1, 1});
  check_values(g, {1, 1});
  // the same through sum's gradient, shared by both inputs of add
  Tensor c = leaf({1, 2}, {2}), d = leaf({3, 4}, {2});
  sum(add(c, d)).backward();
  CHECK_FALSE(same_storage(c.grad(), d.grad()));
}

TEST_CASE("broadcast gradients are summed back to each input's shape") {
  Generator gen(3);
  Tensor a = randn({2, 3}, gen).requires_grad_();
  Tensor b = randn({3}, gen).requires_grad_();
  Tensor c = randn({2, 1}, gen).requires_grad_();
  Tensor s = randn({1, 1, 1}, gen).requires_grad_();
  Tensor y = mul(add(a, mul(b, c)), s);  // (1, 2, 3)
  CHECK(y.shape() == Shape{1, 2, 3});
  sum(y).backward();
  CHECK(a.grad().shape() == Shape{2, 3});
  CHECK(b.grad().shape() == Shape{3});
  CHECK(c.grad().shape() == Shape{2, 1});
  CHECK(s.grad().shape() == Shape{1, 1, 1});
  const double sv = s.item();
  for (int64_t j = 0; j < 3; ++j) CHECK(b.grad().at({j}) == doctest::Approx(sv * (c.at({0, 0}) + c.at({1, 0}))));
  for (int64_t i = 0; i < 2; ++i)
    CHECK(c.grad().at({i, 0}) == doctest::Approx(sv * (b.at({0}) + b.at({1}) + b.at({2}))));
  double total = 0;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) total += a.at({i, j}) + b.at({j}) * c.at({i, 0});
  CHECK(s.grad().item() == doctest::Approx(total));

  // sum_to itself: leading dims summed away, size-1 dims summed and kept
  Tensor g = arange(0.0, 24.0, 1.0).reshape({2, 3, 4});
  check_values(sum_to(g, {3, 1}), {0 + 1 + 2 + 3 + 12 + 13 + 14 + 15, 4 + 5 + 6 + 7 + 16 + 17 + 18 + 19,
                                   8 + 9 + 10 + 11 + 20 + 21 + 22 + 23});
  check_values(sum_to(g, {1}), {276});
  CHECK(sum_to(g, {2, 3, 4}).same(g));
}

TEST_CASE("NoGradGuard turns recording off in its scope, and nests") {
  Tensor x = leaf({1, 2}, {2});
  CHECK(grad_enabled());
  {
    NoGradGuard outer;
    CHECK_FALSE(grad_enabled());
    Tensor y = mul(x, x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    {
      NoGradGuard inner;
      CHECK_FALSE(grad_enabled());
    }
    CHECK_FALSE(grad_enabled());  // the inner guard restores "off", not "on"
  }
  CHECK(grad_enabled());
  CHECK(mul(x, x).requires_grad());
}

TEST_CASE("detach shares storage and cuts the graph") {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = mul(x, 2.0);
  Tensor d = y.detach();
  CHECK(same_storage(d, y));
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  // gradient flows only through the attached path: z = y * detach(y), dz/dx = 2 * detach(y)
  Tensor z = mul(y, d);
  sum(z).backward();
  check_values(x.grad(), {4, 8});
}

TEST_CASE("requires_grad_ on leaves and non-leaves") {
  Tensor x = ones({2});
  CHECK_FALSE(x.requires_grad());
  x.requires_grad_();
  CHECK(x.requires_grad());
  x.requires_grad_(false);
  CHECK_FALSE(x.requires_grad());
  CHECK_THROWS_MG(sum(x).backward(), "backward", "does not require grad");
  Tensor w = ones({2}).requires_grad_();
  Tensor y = mul(w, 2.0);
  CHECK_FALSE(y.is_leaf());
  CHECK_THROWS_MG(y.requires_grad_(false), "requires_grad_", "non-leaf", "detach()");
  CHECK_THROWS_MG(zeros({1}, DType::Int64).requires_grad_(), "requires_grad_", "int64[1]");
}

TEST_CASE("a second backward through a freed graph is an error; retain_graph keeps it") {
  Tensor x = leaf({1, 2}, {2});
  Tensor loss = sum(exp(x));
  loss.backward();
  CHECK_THROWS_MG(loss.backward(), "backward", "'sum'", "already freed", "retain_graph=true");
  // the nodes released what they saved: that is what frees the activations
  REQUIRE(loss.grad_fn()->next[0].fn->name == "exp");
  CHECK(loss.grad_fn()->next[0].fn->saved.empty());
  CHECK_FALSE(loss.grad_fn()->next[0].fn->backward);

  Tensor y = leaf({1, 2}, {2});
  Tensor l2 = sum(exp(y));
  l2.backward(Tensor(), /*retain_graph=*/true);
  l2.backward();
  check_values(y.grad(), {2 * std::exp(1.0), 2 * std::exp(2.0)}, 1e-6);
  CHECK_THROWS_MG(l2.backward(), "already freed");
}

TEST_CASE("an in-place write into a tensor saved for backward is caught") {
  Tensor x = leaf({1, 2}, {2});
  Tensor w = Tensor::from_vector({3, 4}, {2});  // a constant that mul saves
  Tensor y = sum(mul(x, w));
  w.fill_(0);  // allowed (w needs no grad), but mul's gradient for x would now be wrong
  CHECK_THROWS_MG(y.backward(), "backward", "float32[2]", "'mul'", "modified in place", "version 0 -> 1");

  // through a view: the version counter belongs to the storage
  Tensor a = leaf({1, 2, 3}, {3});
  Tensor base = Tensor::from_vector({1, 2, 3, 4}, {4});
  Tensor y2 = sum(mul(a, base.narrow(0, 1, 3)));
  base.narrow(0, 0, 1).fill_(9);
  CHECK_THROWS_MG(y2.backward(), "'mul'", "modified in place");

  // a parameter changed under NoGradGuard between forward and backward
  Tensor p = leaf({1, 2}, {2});
  Tensor y3 = sum(exp(p));
  {
    NoGradGuard ng;
    p.add_(ones({2}));
  }
  CHECK_THROWS_MG(y3.backward(), "'exp'", "modified in place");

  // an op's output that its backward reads (exp: dx = g * y), changed under NoGradGuard
  Tensor e = leaf({1, 2}, {2});
  Tensor ey = exp(e);
  Tensor y4 = sum(ey);
  {
    NoGradGuard ng;
    ey.mul_(2);
  }
  CHECK_THROWS_MG(y4.backward(), "'exp'", "modified in place");

  // writes before the forward are fine
  Tensor q = leaf({1, 2}, {2});
  Tensor k = Tensor::from_vector({1, 1}, {2});
  k.fill_(2);
  sum(mul(q, k)).backward();
  check_values(q.grad(), {2, 2});
}

TEST_CASE("backward argument errors") {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = mul(x, x);
  CHECK_THROWS_MG(y.backward(), "backward", "non-scalar", "[2]");
  CHECK_THROWS_MG(y.backward(ones({3})), "backward", "gradient of shape [3]", "output of shape [2]");
}

TEST_CASE("the engine checks what a backward function returns") {
  Tensor x = leaf({1, 2}, {2});
  Tensor out = Tensor::from_vector({0, 0}, {2});
  record("bad_op", out, {x}, [](const Tensor&) { return std::vector<Tensor>{ones({3})}; });
  CHECK(out.grad_fn()->name == "bad_op");
  CHECK_THROWS_MG(sum(out).backward(), "'bad_op'", "gradient of shape [3]", "input 0 of shape [2]");
  Tensor out2 = Tensor::from_vector({0, 0}, {2});
  record("two_grads", out2, {x}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  CHECK_THROWS_MG(sum(out2).backward(), "'two_grads'", "returned 2 gradients for 1 inputs");
}

TEST_CASE("a float32 leaf used through to(float64) gets a float32 gradient") {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = mul(x.to(DType::Float64), 3.0);
  sum(y).backward();
  CHECK(x.grad().dtype() == DType::Float32);
  check_values(x.grad(), {3, 3});
}

TEST_CASE("non-contiguous leaves get gradients of their own shape") {
  Tensor base = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor t = base.transpose(0, 1);  // a (3, 2) leaf view
  t.requires_grad_();
  sum(mul(t, t)).backward();
  CHECK(t.grad().shape() == Shape{3, 2});
  check_values(t.grad(), {2, 8, 4, 10, 6, 12});
}

TEST_CASE("a deep chain does not overflow the stack") {
  Tensor x = Tensor::from_vector({1}, {1}, DType::Float64).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = add(y, 1e-4);
  sum(y).backward();
  check_values(x.grad(), {1});
  CHECK(y.at({0}) == doctest::Approx(11.0));
  // a chain never run backward: each node's closure still holds its inputs, and with them the
  // node below; dropping the last handle frees it all without recursing once per node
  Tensor k = Tensor::from_vector({1.0}, {1}, DType::Float64);
  Tensor z = x;
  for (int i = 0; i < 100000; ++i) z = mul(z, k);
  CHECK(z.grad_fn()->name == "mul");
  z = Tensor();
  y = Tensor();
}

TEST_CASE("graph_to_string prints the graph depth-first, inputs in order") {
  Tensor a = leaf({1, 2}, {2}, "a"), b = leaf({3, 4}, {2}, "b");
  CHECK(graph_to_string(mul(a, b)) ==
        "mul\n"
        "  a float32[2]\n"
        "  b float32[2]\n");
  Tensor c = add(a, b);
  Tensor loss = sum(mul(exp(c), c));
  CHECK(graph_to_string(loss) ==
        "sum\n"
        "  mul\n"
        "    exp\n"
        "      add\n"
        "        a float32[2]\n"
        "        b float32[2]\n"
        "    add (see above)\n");
  // constants (no grad) are not part of the graph; unnamed leaves are "leaf"
  Tensor u = leaf({1}, {1});
  CHECK(graph_to_string(mul(add(u, Tensor::from_vector({1}, {1})), a)) ==
        "mul\n"
        "  add\n"
        "    leaf float32[1]\n"
        "  a float32[2]\n");
  CHECK(graph_to_string(a) == "a float32[2] (requires grad)\n");
  CHECK(graph_to_string(ones({2})) == "leaf float32[2] (no graph)\n");
}

TEST_CASE("graph_to_dot writes one node per op and leaf and an edge per input") {
  Tensor a = leaf({1, 2}, {2}, "a"), b = leaf({3, 4}, {2}, "b");
  Tensor c = add(a, b);
  std::string dot = graph_to_dot(mul(c, a));
  CHECK(dot.rfind("digraph autograd {\n", 0) == 0);
  CHECK(dot.substr(dot.size() - 2) == "}\n");
  CHECK(dot.find("[label=\"mul\"]") != std::string::npos);
  CHECK(dot.find("[label=\"add\"]") != std::string::npos);
  CHECK(dot.find("[label=\"a float32[2]\", style=filled, fillcolor=lightblue]") != std::string::npos);
  CHECK(dot.find("[label=\"b float32[2]\", style=filled, fillcolor=lightblue]") != std::string::npos);
  size_t edges = 0, labels = 0;
  for (size_t p = dot.find("->"); p != std::string::npos; p = dot.find("->", p + 1)) ++edges;
  for (size_t p = dot.find("[label="); p != std::string::npos; p = dot.find("[label=", p + 1)) ++labels;
  CHECK(edges == 4);   // c->mul, a->mul, a->add, b->add
  CHECK(labels == 4);  // mul, add, a, b: a appears once though used twice
  CHECK(graph_to_dot(ones({1})) ==
        "digraph autograd {\n  rankdir=BT;\n  node [shape=box, fontname=\"monospace\"];\n}\n");
}
