// The fast and the reference kernels (core/kernel_path.h) of batch_norm, batch_norm_gelu,
// layer_norm, multi_head_attention and the token-row copies give the same values and gradients:
// each op runs forward and backward on both paths, on shapes that take every special case of the
// fast loops (blocks of channels and single long channels, LayerNorm's 8-row float path and several
// blocks of rows, the attention products' 4-row blocks and narrow edges, whole and ragged 16 x 16
// copy blocks) and on non-contiguous inputs; float64 to 1e-10, float32 to ~1e-5. Then gradcheck
// holds the reference path's gradients to central differences.
#include <doctest/doctest.h>

#include <array>
#include <functional>
#include <numeric>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/ops.h"
#include "gradcheck.h"
#include "helpers.h"

using namespace mg;
using V = std::vector<Tensor>;
using Fn = std::function<Tensor(const V&)>;

namespace {

// f's output and every input's gradient for the upstream gradient r = randn (seeded), on `path`.
// Each input is a fresh leaf over the same memory (its strides kept).
V run(KernelPath path, const Fn& f, const V& inputs) {
  KernelPathGuard guard(path);
  V leaves;
  for (const Tensor& t : inputs) leaves.push_back(t.detach().requires_grad_(true));
  Tensor out = f(leaves);
  Generator gen(99);
  sum(mul(out, randn(out.shape(), gen, out.dtype()))).backward();
  V result{out.detach()};
  for (const Tensor& t : leaves) result.push_back(t.grad());
  return result;
}

// Both paths, every result compared: float64 to 1e-10, float32 to 1e-5 (relative, with an absolute
// floor for values near 0).
void check_paths(const Fn& f, const V& inputs) {
  const V fast = run(KernelPath::fast, f, inputs), ref = run(KernelPath::reference, f, inputs);
  const bool f64 = inputs[0].dtype() == DType::Float64;
  for (size_t i = 0; i < fast.size(); ++i) {
    INFO((i == 0 ? std::string("output") : cat("gradient of input ", i - 1)));
    REQUIRE(fast[i].defined() == ref[i].defined());
    if (fast[i].defined()) mg::testing::check_close(fast[i], ref[i], f64 ? 1e-10 : 1e-5, f64 ? 1e-10 : 1e-5);
  }
}

// The three layouts of an input: contiguous, dims stored in reverse, every other element.
enum class Layout { Contiguous, Permuted, Strided };
const Layout kLayouts[] = {Layout::Contiguous, Layout::Permuted, Layout::Strided};

const char* name_of(Layout l) {
  return l == Layout::Contiguous ? "contiguous" : l == Layout::Permuted ? "permuted" : "strided";
}

struct Maker {
  mg::testing::Inputs in{11};
  Tensor operator()(const Shape& s, DType dt = DType::Float64, Layout l = Layout::Contiguous) {
    switch (l) {
      case Layout::Permuted: return in.permuted(s, dt);
      case Layout::Strided: return in.strided(s, dt);
      default: return in.randn(s, dt);
    }
  }
  // randn * scale + shift, in the given layout (a mean far from 0 tests the normalisations)
  Tensor shifted(const Shape& s, DType dt, Layout l, double scale, double shift) {
    Tensor t = (*this)(s, dt, l);
    NoGradGuard ng;
    t.copy_(add(mul(t, scale), shift));
    return t;
  }
};

}  // namespace

TEST_CASE("batch_norm and batch_norm_gelu: fast and reference paths agree, training and evaluation") {
  Maker mk;
  // (N, C, ...) with, for float, blocks of 16 channels and a rest (inner 6), one channel at a time
  // (inner 1600), rows shorter than the lanes, a (N, C) and a (N, C, L) input
  for (DType dt : {DType::Float64, DType::Float32})
    for (const Shape& s : {Shape{3, 37, 2, 3}, Shape{2, 3, 40, 40}, Shape{4, 5, 1, 3}, Shape{6, 4}, Shape{2, 3, 7}})
      for (Layout l : kLayouts)
        for (bool training : {true, false})
          for (bool affine : {true, false}) {
            const int64_t c = s[1];
            Tensor x = mk.shifted(s, dt, l, 2.0, 0.5);
            INFO(x.info(), " ", name_of(l), training ? " training" : " eval", affine ? " affine" : "");
            Tensor rm = mul(mk({c}, dt), 0.1), rv = add(mg::rand({c}, mk.in.gen, dt), 0.5);
            V in{x};
            if (affine) in.push_back(mk({c}, dt, l)), in.push_back(mk({c}, dt, l));
            for (bool gelu : {false, true}) {
              // the running statistics the two runs update, compared after them
              Tensor rm_fast = rm.clone(), rv_fast = rv.clone(), rm_ref = rm.clone(), rv_ref = rv.clone();
              Tensor *pm = &rm_fast, *pv = &rv_fast;
              Fn f = [&](const V& a) {
                Tensor w = affine ? a[1] : Tensor(), b = affine ? a[2] : Tensor();
                return gelu ? batch_norm_gelu(a[0], *pm, *pv, w, b, training, 0.1, 1e-3)
                            : batch_norm(a[0], *pm, *pv, w, b, training, 0.1, 1e-3);
              };
              const V fast = run(KernelPath::fast, f, in);
              pm = &rm_ref, pv = &rv_ref;
              const V ref = run(KernelPath::reference, f, in);
              const double tol = dt == DType::Float64 ? 1e-10 : 1e-5;
              for (size_t i = 0; i < fast.size(); ++i) mg::testing::check_close(fast[i], ref[i], tol, tol);
              mg::testing::check_close(rm_fast, rm_ref, tol, tol);
              mg::testing::check_close(rv_fast, rv_ref, tol, tol);
            }
          }
}

TEST_CASE("layer_norm: fast and reference paths agree") {
  Maker mk;
  // float C of whole vectors (the 8-row path, rows not a multiple of 8), C of no whole vectors,
  // more rows than one block of the weight-gradient sums (256), a 1-d input
  for (DType dt : {DType::Float64, DType::Float32})
    for (const Shape& s : {Shape{3, 7, 32}, Shape{5, 20}, Shape{2, 150, 48}, Shape{16}})
      for (Layout l : kLayouts) {
        const int64_t c = s.back();
        Tensor x = mk.shifted(s, dt, l, 2.0, 1.0), w = mk({c}, dt, l), b = mk({c}, dt, l);
        INFO(x.info(), " ", name_of(l));
        check_paths([](const V& a) { return layer_norm(a[0], a[1], a[2]); }, {x, w, b});
        check_paths([](const V& a) { return layer_norm(a[0], Tensor(), Tensor()); }, {x});
        check_paths([](const V& a) { return layer_norm(a[0], a[1], Tensor(), 1e-3); }, {x, w});
        check_paths([](const V& a) { return layer_norm(a[0], Tensor(), a[1]); }, {x, b});
      }
}

TEST_CASE("multi_head_attention: fast and reference paths agree") {
  Maker mk;
  struct Case {
    Shape lead;  // the group dims before (n, 3C)
    int64_t n, heads, hd;
  };
  // MaxViT's 16 tokens x 32 channels a head; sizes off the 4-row blocks and the vector width; 49
  // tokens; enough small groups for several tasks' bias-gradient sums; no group dims at all
  for (DType dt : {DType::Float64, DType::Float32})
    for (const Case& k :
         {Case{{2, 3}, 16, 2, 32}, Case{{3}, 7, 3, 5}, Case{{2}, 49, 2, 32}, Case{{100}, 7, 1, 5}, Case{{}, 6, 2, 4}})
      for (Layout l : kLayouts) {
        INFO(dtype_name(dt), " n ", k.n, " heads ", k.heads, " hd ", k.hd, " ", name_of(l));
        Shape s = k.lead;
        s.push_back(k.n), s.push_back(3 * k.heads * k.hd);
        const int64_t heads = k.heads;
        check_paths([heads](const V& a) { return multi_head_attention(a[0], a[1], heads, 0.3); },
                    {mk(s, dt, l), mk({k.heads, k.n, k.n}, dt, l)});
      }
}

TEST_CASE("to_token_rows and from_token_rows: fast and reference paths agree") {
  Maker mk;
  Generator g(12);
  // channels and positions around the 16 x 16 (float) and 8 x 8 (double) blocks of the copy
  for (DType dt : {DType::Float64, DType::Float32})
    for (auto [c, h, w] : {std::array<int64_t, 3>{3, 2, 3}, {16, 4, 4}, {35, 5, 8}, {20, 1, 1}})
      for (Layout l : kLayouts) {
        INFO(dtype_name(dt), " c ", c, " h ", h, " w ", w, " ", name_of(l));
        std::vector<int64_t> rows(static_cast<size_t>(h * w));
        std::iota(rows.begin(), rows.end(), 0);
        for (int64_t i = h * w - 1; i > 0; --i) std::swap(rows[i], rows[static_cast<int64_t>(g.uniform() * (i + 1))]);
        check_paths([&](const V& a) { return to_token_rows(a[0], rows); }, {mk({2, c, h, w}, dt, l)});
        check_paths([&](const V& a) { return from_token_rows(a[0], rows, h, w); }, {mk({2, h * w, c}, dt, l)});
      }
}

TEST_CASE("gradcheck on the reference path: batch norm, layer norm, attention, token rows") {
  KernelPathGuard guard(KernelPath::reference);
  Maker mk;
  for (Layout l : kLayouts) {
    INFO(name_of(l));
    Tensor rm = zeros({3}, DType::Float64), rv = ones({3}, DType::Float64);
    Tensor erm = mk({3}), erv = mk.in.uniform({3}, 0.5, 2.0);
    for (bool training : {true, false}) {
      Tensor& m = training ? rm : erm;
      Tensor& v = training ? rv : erv;
      CHECK_GRADCHECK([&](const V& x) { return batch_norm(x[0], m, v, x[1], x[2], training, 0.1, 1e-5); },
                      {mk({2, 3, 2, 3}, DType::Float64, l), mk({3}), mk({3})});
      CHECK_GRADCHECK([&](const V& x) { return batch_norm_gelu(x[0], m, v, x[1], x[2], training, 0.1, 1e-5); },
                      {mk({2, 3, 2, 3}, DType::Float64, l), mk({3}), mk({3})});
    }
    CHECK_GRADCHECK(
        [](const V& x) { return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5); },
        {mk({4, 3}, DType::Float64, l)});
    CHECK_GRADCHECK([](const V& x) { return layer_norm(x[0], x[1], x[2]); },
                    {mk({3, 4, 5}, DType::Float64, l), mk({5}), mk({5})});
    CHECK_GRADCHECK([](const V& x) { return layer_norm(x[0], Tensor(), Tensor()); }, {mk({3, 5}, DType::Float64, l)});
    CHECK_GRADCHECK([](const V& x) { return multi_head_attention(x[0], x[1], 2, 0.7); },
                    {mk({2, 3, 4, 18}, DType::Float64, l), mk({2, 4, 4}, DType::Float64, l)});
    const std::vector<int64_t> rows = {3, 0, 5, 1, 4, 2};  // a 2 x 3 map
    CHECK_GRADCHECK([&](const V& x) { return to_token_rows(x[0], rows); }, {mk({2, 3, 2, 3}, DType::Float64, l)});
    CHECK_GRADCHECK([&](const V& x) { return from_token_rows(x[0], rows, 2, 3); }, {mk({2, 6, 3}, DType::Float64, l)});
  }
}
