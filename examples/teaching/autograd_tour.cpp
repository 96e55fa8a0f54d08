// autograd_tour: builds two small graphs, prints them (mg::graph_to_string), runs backward and
// prints every gradient beside a central finite-difference estimate. docs/autograd.md reads along.
//
//   autograd_tour [--dot FILE]     FILE: the batched graph as Graphviz DOT (dot -Tpng FILE -o graph.png)
//
// Everything is float64, so the finite differences (step 1e-6) agree with the analytic gradients
// to about 1e-9 and a wrong backward formula would stand out by orders of magnitude.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"
#include "examples/common/flags.h"

using namespace mg;

namespace {

Tensor leaf(const std::vector<double>& values, const Shape& shape, const char* name) {
  Tensor t = Tensor::from_vector(values, shape, DType::Float64);
  t.requires_grad_();
  t.set_name(name);
  return t;
}

// d loss / d x[i] ~ (loss(x[i] + h) - loss(x[i] - h)) / 2h, for every element of leaf x, with the
// forward re-run under NoGradGuard (no graph is recorded for these evaluations).
std::vector<double> finite_difference(Tensor& x, const std::function<Tensor()>& loss) {
  const double h = 1e-6;
  NoGradGuard no_grad;
  double* p = x.data<double>();  // leaves are contiguous; writing through the pointer leaves no trace
  std::vector<double> est(static_cast<size_t>(x.numel()));
  for (size_t i = 0; i < est.size(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double up = loss().item();
    p[i] = keep - h;
    const double down = loss().item();
    p[i] = keep;
    est[i] = (up - down) / (2 * h);
  }
  return est;
}

// "[1, 0]" for flat element i of a tensor of shape s (row-major).
std::string index_str(size_t i, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = static_cast<int64_t>(i) % s[d];
    i /= static_cast<size_t>(s[d]);
  }
  std::string out;
  for (int64_t v : idx) out += (out.empty() ? "" : ", ") + std::to_string(v);
  return "[" + out + "]";
}

// The largest |backward - finite difference| seen: main fails when it is not small.
double g_worst = 0;
constexpr double kTolerance = 1e-7;

// Prints dL/dx from backward beside the finite-difference estimate, element by element, or only
// their agreement when x is long.
void compare(Tensor& x, const std::function<Tensor()>& loss, bool every_element) {
  const std::vector<double> g = x.grad().to_vector(), fd = finite_difference(x, loss);
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::fabs(g[i] - fd[i]));
  g_worst = std::max(g_worst, worst);
  const std::string name = "dL/d" + x.name();
  if (x.dim() == 0) {
    std::printf("  %-8s backward %12.8f   finite difference %12.8f\n", name.c_str(), g[0], fd[0]);
    return;
  }
  std::printf("  %-8s %s, the shape of %s\n", name.c_str(), x.grad().shape_str().c_str(), x.name().c_str());
  if (every_element)
    for (size_t i = 0; i < g.size(); ++i)
      std::printf("    %-8s backward %12.8f   finite difference %12.8f\n", index_str(i, x.shape()).c_str(), g[i],
                  fd[i]);
  else
    std::printf("    all %zu elements: |backward - finite difference| %s %g\n", g.size(),
                worst < kTolerance ? "<" : ">=", kTolerance);
}

// ---- 1. scalars: L = (a * b + c) * f, the example of micrograd's README ----
void scalar_example() {
  Tensor a = leaf({2.0}, {}, "a"), b = leaf({-3.0}, {}, "b"), c = leaf({10.0}, {}, "c"), f = leaf({-2.0}, {}, "f");
  auto forward = [&] {
    Tensor e = mul(a, b);  // -6
    Tensor d = add(e, c);  //  4
    return mul(d, f);      // -8
  };
  Tensor L = forward();
  std::printf("1. scalars: L = (a * b + c) * f with a = 2, b = -3, c = 10, f = -2\n");
  std::printf(
      "L = %g; its graph, as graph_to_string(L) prints it (each op above its inputs, a leaf as name dtype[shape]):\n%s",
      L.item(), graph_to_string(L).c_str());
  L.backward();
  std::printf("after L.backward(): dL/da = b*f, dL/db = a*f, dL/dc = f, dL/df = a*b + c\n");
  for (Tensor* t : {&a, &b, &c, &f}) compare(*t, forward, /*every_element=*/true);
}

// ---- 2. a batched matmul: L = sum(tanh(X @ W + bias)) ----
// X (2, 3, 4) is a batch of two 3x4 matrices; W (4, 2) and bias (2) are shared by the batch, so
// their gradients are summed over it (sum_to in core/autograd.cpp does that for broadcast inputs).
void batched_example(const std::string* dot_path) {
  std::vector<double> xv(24), wv(8);
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = std::sin(0.7 * static_cast<double>(i) + 0.3);
  for (size_t i = 0; i < wv.size(); ++i) wv[i] = 0.5 * std::cos(1.3 * static_cast<double>(i));
  Tensor X = leaf(xv, {2, 3, 4}, "X"), W = leaf(wv, {4, 2}, "W"), bias = leaf({0.1, -0.2}, {2}, "bias");
  auto forward = [&] { return sum(tanh(add(matmul(X, W), bias))); };
  Tensor L = forward();
  std::printf("\n2. a batched matmul: L = sum(tanh(X @ W + bias)), X %s, W %s, bias %s\n", X.shape_str().c_str(),
              W.shape_str().c_str(), bias.shape_str().c_str());
  std::printf("L = %.8f; its graph:\n%s", L.item(), graph_to_string(L).c_str());
  if (dot_path) {
    std::ofstream out(*dot_path);
    out << graph_to_dot(L);
    MG_CHECK(out.good(), "autograd_tour", "could not write ", *dot_path);
    std::printf("wrote the graph as Graphviz DOT to %s\n", dot_path->c_str());
  }
  L.backward();
  std::printf("after L.backward():\n");
  compare(W, forward, /*every_element=*/true);
  compare(bias, forward, /*every_element=*/true);
  compare(X, forward, /*every_element=*/false);
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::string> dot;
  cli::Flags flags("autograd_tour", "[--dot FILE]");
  flags.add_string("dot", "also write the batched example's graph as Graphviz DOT to FILE", &dot);
  flags.parse_or_exit(argc, argv);
  try {
    scalar_example();
    batched_example(dot ? &*dot : nullptr);
  } catch (const std::exception& e) {
    std::cerr << "autograd_tour: " << e.what() << "\n";
    return 1;
  }
  // Printed as a bound, not as the measured difference, whose last digits depend on the machine's
  // libm and vector width; a wrong backward formula misses it by orders of magnitude.
  if (g_worst >= kTolerance) {
    std::printf("\nFAIL: a gradient differs from its finite-difference estimate by %g\n", g_worst);
    return 1;
  }
  std::printf("\nevery gradient agrees with its finite-difference estimate within %g\n", kTolerance);
  return 0;
}
