// The optimised kernels against the plain ones kept beside them (core/kernels): conv2d's four
// paths (depthwise phase planes, 1x1 GEMM, shifted rows, im2col + GEMM) against reference::conv2d_forward, forward
// directly and backward through the adjoint identity, and the depthwise kernels against the reference loops;
// gemm_parallel and the short-k float kernel against reference::gemm with transposed operands, padded leading dims and
// sizes large enough to be split into blocks (or split along k); BatchNorm's lane sums against sequential sums; the
// fused attention against the ops it replaces; sum's in-place kernels; avg_pool2d's vector passes.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "helpers.h"
#include "maxgrad/core/factory.h"
#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/batch_norm.h"
#include "maxgrad/core/kernels/conv.h"
#include "maxgrad/core/kernels/conv_shifted.h"
#include "maxgrad/core/kernels/depthwise.h"
#include "maxgrad/core/kernels/depthwise_3x3.h"
#include "maxgrad/core/kernels/gemm.h"
#include "maxgrad/core/kernels/gemm_small_k.h"
#include "maxgrad/core/kernels/layer_norm.h"
#include "maxgrad/core/kernels/pool.h"
#include "maxgrad/core/kernels/simd.h"
#include "maxgrad/core/kernels/transpose.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/core/reference/batch_norm.h"
#include "maxgrad/core/reference/conv.h"
#include "maxgrad/core/reference/gemm.h"
#include "maxgrad/core/reference/layer_norm.h"

using namespace mg;
using mg::testing::check_values;

namespace {

struct ConvCase {
  int64_t n, c, h, w, o, kh, kw, stride, pad, groups;
};

std::string describe(const ConvCase& k) {
  return cat("x [", k.n, ", ", k.c, ", ", k.h, ", ", k.w, "], weight [", k.o, ", ", k.c / k.groups, ", ", k.kh, ", ",
             k.kw, "], stride ", k.stride, ", padding ", k.pad, ", groups ", k.groups);
}

int64_t pick(Generator& g, int64_t lo, int64_t hi) { return lo + g.randint(hi - lo + 1); }

// Random problems for one path of conv2d (the dispatch rules of core/ops/conv.cpp).
enum class Path { Depthwise, Pointwise, General };
ConvCase random_case(Generator& g, Path path) {
  ConvCase k{};
  k.n = pick(g, 1, 3);
  k.h = pick(g, 3, 9);
  k.w = pick(g, 3, 9);
  switch (path) {
    case Path::Depthwise:
      k.c = k.o = k.groups = pick(g, 2, 6);
      k.kh = pick(g, 1, 3) * 2 - 1;  // 1, 3, 5
      k.kw = pick(g, 0, 1) ? k.kh : pick(g, 1, 3);
      k.stride = pick(g, 1, 2);
      k.pad = pick(g, 0, k.kh / 2);
      break;
    case Path::Pointwise:
      k.c = pick(g, 1, 6);
      k.o = pick(g, 1, 6);
      k.kh = k.kw = 1, k.stride = 1, k.pad = 0, k.groups = 1;
      break;
    case Path::General:
      k.groups = pick(g, 1, 3);
      k.c = k.groups * pick(g, 1, 3);
      k.o = k.groups * pick(g, 1, 3);
      if (k.groups == k.c && k.groups == k.o && k.groups > 1) k.o *= 2;  // stay off the depthwise path
      k.kh = pick(g, 1, 3);
      k.kw = pick(g, 2, 3);  // kw >= 2: never the 1x1 path
      k.stride = pick(g, 1, 2);
      k.pad = pick(g, 0, 1);
      break;
  }
  k.h = std::max(k.h, k.kh), k.w = std::max(k.w, k.kw);
  return k;
}

template <typename T> Tensor reference_conv(const ConvCase& k, const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t ho = (k.h + 2 * k.pad - k.kh) / k.stride + 1, wo = (k.w + 2 * k.pad - k.kw) / k.stride + 1;
  Tensor y = Tensor::empty({k.n, k.o, ho, wo}, x.dtype());
  const kernels::Conv2dShape s{k.n, k.c, k.h, k.w, k.o, k.kh, k.kw, k.stride, k.pad, k.groups, ho, wo};
  reference::conv2d_forward<T>(s, x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>());
  return y;
}

double dot(const Tensor& a, const Tensor& b) {
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  double s = 0;
  for (size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
  return s;
}

// One problem: forward against the seven loops, then the gradients of <gy, conv(x, w)>.
template <typename T> void check_conv_case(const ConvCase& k, Generator& g, bool with_bias) {
  constexpr DType dt = dtype_of<T>::value;
  const double tol = dt == DType::Float64 ? 1e-12 : 1e-5;
  INFO(describe(k), ", ", std::string(dtype_name(dt)));
  Tensor x = randn({k.n, k.c, k.h, k.w}, g, dt);
  Tensor w = randn({k.o, k.c / k.groups, k.kh, k.kw}, g, dt);
  Tensor b = with_bias ? randn({k.o}, g, dt) : Tensor();

  // forward: the fast path against the seven loops
  Tensor ref = reference_conv<T>(k, x, w, b);
  Tensor y = conv2d(x, w, b, k.stride, k.pad, k.groups);
  mg::testing::check_close(y, ref, tol, tol);

  // backward: conv is bilinear in (x, w), so for any gy, <gy, conv(x, w)> = <dx, x> = <dw, w>
  // where dx, dw are the gradients of <gy, conv(x, w)>; checked against the reference's output.
  Tensor xg = x.detach().requires_grad_(), wg = w.detach().requires_grad_();
  Tensor bg = b.defined() ? b.detach().requires_grad_() : Tensor();
  Tensor gy = randn(ref.shape(), g, dt);
  sum(mul(conv2d(xg, wg, bg, k.stride, k.pad, k.groups), gy)).backward();
  const double ref_dot = dot(gy, reference_conv<T>(k, x, w, Tensor()));
  const double scale = std::sqrt(dot(gy, gy) * (dot(x, x) * dot(w, w) + 1)) + 1;  // rounding error scale
  CHECK(std::fabs(dot(xg.grad(), x) - ref_dot) <= tol * scale);
  CHECK(std::fabs(dot(wg.grad(), w) - ref_dot) <= tol * scale);
  if (b.defined()) mg::testing::check_close(bg.grad(), sum(gy, {0, 2, 3}), tol, tol * 10);
}

template <typename T> void check_conv_path(Path path, uint64_t seed) {
  Generator g(seed);
  for (int trial = 0; trial < 12; ++trial) check_conv_case<T>(random_case(g, path), g, trial % 2);
}

template <typename T> std::vector<T> random_vec(Generator& g, int64_t n) {
  std::vector<T> v(static_cast<size_t>(n));
  for (T& e : v) e = static_cast<T>(g.normal());
  return v;
}

template <typename T>
using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*, int64_t);

// `fast` (gemm_parallel unless said otherwise) against reference::gemm
template <typename T> void check_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, T beta, Generator& g,
                                      GemmFn<T> fast = &kernels::gemm_parallel<T>) {
  // op(A) is (m, k): stored (k, m) when transposed. Leading dims padded past the row length.
  const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
  std::vector<T> a = random_vec<T>(g, (ta ? k : m) * lda), b = random_vec<T>(g, (tb ? n : k) * ldb);
  std::vector<T> c0 = random_vec<T>(g, m * ldc);
  if (beta == T(0)) std::fill(c0.begin(), c0.end(), std::numeric_limits<T>::quiet_NaN());  // must be ignored
  std::vector<T> c_fast = c0, c_ref = c0;
  fast(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c_fast.data(), ldc);
  reference::gemm<T>(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c_ref.data(), ldc);
  const double tol = (std::is_same<T, float>::value ? 2e-6 : 1e-14) * std::sqrt(static_cast<double>(k)) * 8;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const T f = c_fast[i * ldc + j], r = c_ref[i * ldc + j];
      if (j >= n) {  // the padding between rows of C is never written
        if (beta != T(0)) REQUIRE(f == c0[i * ldc + j]);
        continue;
      }
      if (!(std::fabs(f - r) <= tol * (1 + std::fabs(r)))) {
        FAIL_CHECK("C[", i, ", ", j, "] = ", f, ", reference ", r);
        return;
      }
    }
}

// gemm_parallel_bias against reference::gemm on C filled with the bias (beta 1), and bit for bit
// against what it replaces: C filled with the bias, then gemm_parallel with beta 1.
template <typename T> void check_gemm_bias(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, Generator& g) {
  const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
  std::vector<T> a = random_vec<T>(g, (ta ? k : m) * lda), b = random_vec<T>(g, (tb ? n : k) * ldb);
  std::vector<T> bias = random_vec<T>(g, n);
  std::vector<T> c_fast(static_cast<size_t>(m * ldc), std::numeric_limits<T>::quiet_NaN());  // must not be read
  std::vector<T> c_filled(static_cast<size_t>(m * ldc), T(7));
  for (int64_t i = 0; i < m; ++i) std::copy(bias.begin(), bias.end(), c_filled.begin() + i * ldc);
  std::vector<T> c_ref = c_filled, c_old = c_filled;
  kernels::gemm_parallel_bias<T>(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, bias.data(), c_fast.data(), ldc);
  kernels::gemm_parallel<T>(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, T(1), c_old.data(), ldc);
  reference::gemm<T>(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, T(1), c_ref.data(), ldc);
  const double tol = (std::is_same<T, float>::value ? 2e-6 : 1e-14) * std::sqrt(static_cast<double>(k)) * 8;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const T f = c_fast[i * ldc + j], r = c_ref[i * ldc + j];
      if (!(std::fabs(f - r) <= tol * (1 + std::fabs(r))) || f != c_old[i * ldc + j]) {
        FAIL_CHECK("C[", i, ", ", j, "] = ", f, ", reference ", r, ", bias then beta 1 ", c_old[i * ldc + j]);
        return;
      }
    }
  for (int64_t i = 0; i < m; ++i) REQUIRE(std::isnan(c_fast[i * ldc + n]));  // the padding is never written
}
}  // namespace

TEST_CASE("conv2d depthwise path matches the reference loops") {
  check_conv_path<float>(Path::Depthwise, 1);
  check_conv_path<double>(Path::Depthwise, 2);
}

TEST_CASE("conv2d depthwise path on planes wider than a vector (MaxViT's 3x3, stride 1 and 2)") {
  // The random cases above stay below 10 columns; these run the vector (de)interleave of the stride-2
  // split, full vectors of taps and of the weight gradient's lane sums, and their tails (17, 18 columns).
  Generator g(21);
  for (int64_t stride : {1, 2})
    for (auto [h, w] : {std::pair<int64_t, int64_t>{34, 36}, {16, 16}, {36, 34}}) {
      const ConvCase k{2, 3, h, w, 3, 3, 3, stride, 1, 3};
      check_conv_case<float>(k, g, false);
      check_conv_case<double>(k, g, true);
    }
}

TEST_CASE("conv2d 1x1 path matches the reference loops") {
  check_conv_path<float>(Path::Pointwise, 3);
  check_conv_path<double>(Path::Pointwise, 4);
}

TEST_CASE("conv2d 1x1 path on small maps (blocks of samples side by side) matches the reference loops") {
  // n / 4 >= 2 and few positions per sample: conv.cpp gathers blocks of samples into one GEMM;
  // the sample counts leave a shorter last block. 1x1 maps are squeeze-excitation's.
  Generator g(7);
  const int64_t shapes[][3] = {{37, 1, 1}, {19, 2, 3}, {9, 4, 4}, {45, 4, 4}};
  for (const auto& nhw : shapes) {
    ConvCase k{};
    k.n = nhw[0], k.h = nhw[1], k.w = nhw[2];
    k.c = pick(g, 1, 7), k.o = pick(g, 1, 7);
    k.kh = k.kw = 1, k.stride = 1, k.pad = 0, k.groups = 1;
    check_conv_case<float>(k, g, true);
    check_conv_case<double>(k, g, false);
  }
}

TEST_CASE("conv2d im2col path matches the reference loops") {
  check_conv_path<float>(Path::General, 5);
  check_conv_path<double>(Path::General, 6);
}

TEST_CASE("conv2d with enough samples to use several weight-gradient partial sums") {
  // 19 samples: three groups of 8 in backward_weight, summed in order
  for (Path path : {Path::Depthwise, Path::Pointwise, Path::General}) {
    Generator g(10 + static_cast<int>(path));
    ConvCase k = random_case(g, path);
    k.n = 19;
    INFO(describe(k));
    Tensor x = randn({k.n, k.c, k.h, k.w}, g, DType::Float64);
    Tensor w = randn({k.o, k.c / k.groups, k.kh, k.kw}, g, DType::Float64).requires_grad_();
    Tensor ref = reference_conv<double>(k, x, w, Tensor());
    Tensor gy = randn(ref.shape(), g, DType::Float64);
    Tensor y = conv2d(x, w, Tensor(), k.stride, k.pad, k.groups);
    mg::testing::check_close(y, ref, 1e-12, 1e-12);
    sum(mul(y, gy)).backward();
    CHECK(dot(w.grad(), w) == doctest::Approx(dot(gy, ref)).epsilon(1e-10));
  }
}

TEST_CASE("conv2d im2col path in blocks of output rows (a wide input) matches the reference loops") {
  // ck = 16 * 9 = 144 and 64 output columns: 7 output rows per im2col block, so 20 rows make 3 blocks
  Generator g(15);
  for (int64_t stride : {1, 2}) {
    const ConvCase k{2, 16, 20, 64, 8, 3, 3, stride, 1, 1};
    INFO(describe(k));
    Tensor x = randn({k.n, k.c, k.h, k.w}, g, DType::Float64), w = randn({k.o, k.c, 3, 3}, g, DType::Float64);
    Tensor b = randn({k.o}, g, DType::Float64);
    Tensor ref = reference_conv<double>(k, x, w, b);
    Tensor xg = x.detach().requires_grad_(), wg = w.detach().requires_grad_();
    Tensor y = conv2d(xg, wg, b, stride, 1);
    mg::testing::check_close(y, ref, 1e-12, 1e-12);
    Tensor gy = randn(ref.shape(), g, DType::Float64);
    sum(mul(y, gy)).backward();
    const double ref_dot = dot(gy, reference_conv<double>(k, x, w, Tensor()));
    CHECK(dot(xg.grad(), x) == doctest::Approx(ref_dot).epsilon(1e-10));
    CHECK(dot(wg.grad(), w) == doctest::Approx(ref_dot).epsilon(1e-10));
  }
}

TEST_CASE("conv2d shifted-row path (float, stride 1, thin) matches the reference, gradients value by value") {
  // core/kernels/conv_shifted.h: the forward against the seven loops; the input and weight gradients
  // against the same problem in double (which takes the im2col path), every value. The cases cover
  // the stem (3 -> 32 and 32 -> 32, 3x3 at 32x32; 9 samples: two weight-gradient partials), a 5x5
  // kernel, padding 0 to kh - 1, widths whose padded rows do not fill whole vectors, 1-row outputs,
  // and channel counts off the weight-gradient blocks (4 outputs x 6 taps) and the 6-row GEMM tiles.
  const ConvCase cases[] = {{9, 3, 32, 32, 32, 3, 3, 1, 1, 1}, {3, 32, 32, 32, 32, 3, 3, 1, 1, 1},
                            {2, 5, 7, 9, 7, 3, 3, 1, 0, 1},    {2, 3, 6, 5, 5, 3, 3, 1, 2, 1},
                            {3, 2, 11, 13, 13, 5, 5, 1, 2, 1}, {1, 7, 3, 3, 3, 3, 3, 1, 0, 1},
                            {2, 1, 4, 17, 1, 2, 2, 1, 1, 1}};
  Generator g(31);
  for (const ConvCase& k : cases) {
    INFO(describe(k));
    REQUIRE(kernels::shifted_conv_fits(
        kernels::ConvGeom{k.c, k.h, k.w, k.kh, k.kw, 1, k.pad, k.h + 2 * k.pad - k.kh + 1, k.w + 2 * k.pad - k.kw + 1},
        k.o, 1));
    Tensor x = randn({k.n, k.c, k.h, k.w}, g), w = randn({k.o, k.c, k.kh, k.kw}, g), b = randn({k.o}, g);
    Tensor xg = x.detach().requires_grad_(), wg = w.detach().requires_grad_(), bg = b.detach().requires_grad_();
    Tensor y = conv2d(xg, wg, bg, 1, k.pad);
    const double tol = 1e-6 * std::sqrt(static_cast<double>(k.c * k.kh * k.kw)) * 8;
    mg::testing::check_close(y, reference_conv<float>(k, x, w, b), tol, tol);
    Tensor gy = randn(y.shape(), g);
    sum(mul(y, gy)).backward();
    Tensor xd = x.to(DType::Float64).requires_grad_(), wd = w.to(DType::Float64).requires_grad_();
    sum(mul(conv2d(xd, wd, b.to(DType::Float64), 1, k.pad), gy.to(DType::Float64))).backward();
    const double gtol = 1e-6 * std::sqrt(static_cast<double>(k.n * k.h * k.w * k.o)) * 8;
    mg::testing::check_close(xg.grad().to(DType::Float64), xd.grad(), gtol, gtol);
    mg::testing::check_close(wg.grad().to(DType::Float64), wd.grad(), gtol, gtol);
  }
  // and the rule: stride 2, groups, wide convs and uneven kernels keep the other paths
  CHECK_FALSE(kernels::shifted_conv_fits(kernels::ConvGeom{32, 32, 32, 3, 3, 2, 1, 16, 16}, 32, 1));
  CHECK_FALSE(kernels::shifted_conv_fits(kernels::ConvGeom{16, 32, 32, 3, 3, 1, 1, 32, 32}, 32, 2));
  CHECK_FALSE(kernels::shifted_conv_fits(kernels::ConvGeom{128, 8, 8, 3, 3, 1, 1, 8, 8}, 128, 1));
  CHECK_FALSE(kernels::shifted_conv_fits(kernels::ConvGeom{8, 8, 8, 1, 3, 1, 0, 8, 6}, 8, 1));
  CHECK_FALSE(kernels::shifted_conv_fits(kernels::ConvGeom{0, 8, 8, 3, 3, 1, 1, 8, 8}, 8, 1));
  CHECK_FALSE(kernels::shifted_conv_fits(kernels::ConvGeom{8, 8, 8, 3, 3, 1, 1, 8, 8}, 0, 1));
}

TEST_CASE("conv2d forward on fewer than 4 samples (each product split across threads) keeps the bits") {
  // A batch of 1 to 3 splits each sample's product; a batch of 4 runs samples whole, one per task.
  // The stem's shifted 3x3 (32 -> 32 at 32x32), a 1x1 (32 -> 128) and an im2col conv (stride 2).
  Generator g(5);
  const ConvCase cases[] = {
      {4, 32, 32, 32, 32, 3, 3, 1, 1, 1}, {4, 32, 32, 32, 128, 1, 1, 1, 0, 1}, {4, 16, 17, 17, 48, 3, 3, 2, 1, 1}};
  for (const ConvCase& k : cases) {
    INFO(describe(k));
    Tensor x = randn({k.n, k.c, k.h, k.w}, g), w = randn({k.o, k.c, k.kh, k.kw}, g), b = randn({k.o}, g);
    const std::vector<double> whole = conv2d(x, w, b, k.stride, k.pad, k.groups).to_vector();
    for (int64_t first : {0, 3}) {  // the first sample alone, the last alone
      Tensor xs = index_select(x, 0, full({1}, static_cast<double>(first), DType::Int64));
      const std::vector<double> alone = conv2d(xs, w, b, k.stride, k.pad, k.groups).to_vector();
      const size_t per = alone.size();
      CHECK(std::equal(alone.begin(), alone.end(), whole.begin() + static_cast<std::ptrdiff_t>(first * per)));
    }
  }
}

TEST_CASE("conv2d with no input channels, no output channels or no samples, on every path") {
  // zeros out (a sum over nothing), empty gradients of the right shapes, no crash
  for (DType dt : {DType::Float32, DType::Float64})
    for (auto [n, c, o, k, groups] :
         {std::array<int64_t, 5>{2, 0, 4, 3, 1}, {2, 3, 0, 3, 1}, {0, 3, 4, 3, 1}, {2, 0, 4, 1, 1}, {0, 4, 4, 3, 4}}) {
      INFO(std::string(dtype_name(dt)), " n ", n, " c ", c, " o ", o, " k ", k, " groups ", groups);
      Tensor x = zeros({n, c, 5, 5}, dt).requires_grad_(), w = ones({o, c / groups, k, k}, dt).requires_grad_();
      Tensor y = conv2d(x, w, Tensor(), 1, k / 2, groups);
      CHECK(y.shape() == Shape{n, o, 5, 5});
      for (double v : y.to_vector()) CHECK(v == 0.0);
      sum(y).backward();
      CHECK(x.grad().shape() == x.shape());
      CHECK(w.grad().shape() == w.shape());
      for (double v : w.grad().to_vector()) CHECK(v == 0.0);
    }
}

TEST_CASE("im2col and col2im are adjoint, and depthwise kernels touch only their channels") {
  Generator g(20);
  const kernels::ConvGeom geo{2, 5, 6, 3, 2, 2, 1, 3, 4};  // c, h, w, kh, kw, stride, pad, ho, wo
  const int64_t nx = geo.c * geo.h * geo.w, ncol = geo.c * geo.kh * geo.kw * geo.ho * geo.wo;
  std::vector<double> x = random_vec<double>(g, nx), col = random_vec<double>(g, ncol);
  std::vector<double> im(static_cast<size_t>(ncol)), back(static_cast<size_t>(nx), 0.0);
  kernels::im2col(x.data(), geo, im.data());
  kernels::col2im(col.data(), geo, back.data());
  double lhs = 0, rhs = 0;
  for (int64_t i = 0; i < ncol; ++i) lhs += im[i] * col[i];
  for (int64_t i = 0; i < nx; ++i) rhs += x[i] * back[i];
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));

  // dw_forward on channel range [1, 2) of 3 leaves channels 0 and 2 as they were (the 3x3 register
  // kernel and the phase planes: stride 1 and 2)
  for (int64_t stride : {1, 2}) {
    const int64_t o = 4 / stride;
    const kernels::ConvGeom dg{1, 4, 4, 3, 3, stride, 1, o, o};
    std::vector<double> dx = random_vec<double>(g, 3 * 16), dw = random_vec<double>(g, 3 * 9);
    std::vector<double> y(3 * o * o, -7.0), yref(3 * o * o), scratch(static_cast<size_t>(kernels::dw_scratch_size(dg)));
    kernels::dw_forward<double>(dx.data(), dw.data(), nullptr, dg, 1, 2, y.data(), scratch.data());
    reference::conv2d_forward<double>({1, 3, 4, 4, 3, 3, 3, stride, 1, 3, o, o}, dx.data(), dw.data(), nullptr,
                                      yref.data());
    for (int64_t i = 0; i < 3 * o * o; ++i) {
      if (i >= o * o && i < 2 * o * o)
        CHECK(y[i] == doctest::Approx(yref[i]).epsilon(1e-12));
      else
        CHECK(y[i] == -7.0);
    }
  }
}

TEST_CASE("gemm_parallel matches reference::gemm: every transpose, padded leading dims, split sizes") {
  Generator g(30);
  struct Size {
    int64_t m, n, k;
  };
  // 300x70x64 and 40x200x160 are above the split threshold (rows and columns of C are split);
  // 24x20x3000 and 130x140x2100 have a long k next to C (k is split, the partial products summed;
  // the second is large enough that C could have been split); the others run as one call,
  // including a 1-row product and k = 1. 512x64x128 (rows split) and 48x64x2048 (k split) reach the
  // short-k float kernel in every block; 96x32x8200 too, with parts of k long enough (1088) for its
  // blocks of k (a linear layer's weight gradient).
  const Size sizes[] = {{300, 70, 64},  {40, 200, 160},   {5, 7, 3},      {1, 9, 4},      {6, 5, 1},     {257, 300, 17},
                        {24, 20, 3000}, {130, 140, 2100}, {512, 64, 128}, {48, 64, 2048}, {96, 32, 8200}};
  for (const Size& s : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("m ", s.m, " n ", s.n, " k ", s.k, " trans_a ", ta, " trans_b ", tb);
        check_gemm<float>(ta, tb, s.m, s.n, s.k, 1.0f, 0.0f, g);
        check_gemm<double>(ta, tb, s.m, s.n, s.k, 1.0, 0.0, g);
        check_gemm<float>(ta, tb, s.m, s.n, s.k, 1.5f, 0.5f, g);
        check_gemm<double>(ta, tb, s.m, s.n, s.k, -0.5, 1.0, g);
      }
}

TEST_CASE("gemm_small_k matches reference::gemm: every tile size at the edges of C, both transposes") {
  Generator g(31);
  // m 1..7 and 13 leave every row remainder of the 6-row tile (and of the 4-row one without AVX);
  // n 16..80 every count of vectors in the last tile; k 1 and 128 the ends of the short range. 1024
  // columns by 128 rows with k 32 is a 1x1 convolution of the cifar preset's first stage; 32 x 224 with
  // k 288 a block of its stem's 3x3 convolution; k 1000 the long range with a thin side; 288 x 224 with
  // k 32 the stem's input-gradient columns (both sides large, k within kTinyK); k 1500 and 2048 a long k
  // in blocks (11 full and a ragged one, 16 full), a linear layer's weight gradient.
  struct Size {
    int64_t m, n, k;
  };
  const Size sizes[] = {{1, 16, 1},     {2, 32, 3},     {3, 48, 32},    {4, 64, 7},     {5, 80, 128},
                        {6, 96, 33},    {7, 112, 64},   {13, 128, 5},   {300, 32, 32},  {128, 1024, 32},
                        {32, 224, 288}, {50, 32, 1000}, {288, 224, 32}, {96, 32, 1500}, {256, 128, 2048}};
  for (const Size& s : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("m ", s.m, " n ", s.n, " k ", s.k, " trans_a ", ta, " trans_b ", tb);
        REQUIRE(kernels::gemm_small_k_fits(ta, tb && s.k <= 256, s.m, s.n, s.k));  // (it runs a transposed B anyway)
        check_gemm<float>(ta, tb, s.m, s.n, s.k, 1.0f, 0.0f, g, &kernels::gemm_small_k);
        check_gemm<float>(ta, tb, s.m, s.n, s.k, 1.5f, 0.5f, g, &kernels::gemm_small_k);
        check_gemm<float>(ta, tb, s.m, s.n, s.k, -0.5f, 1.0f, g, &kernels::gemm_small_k);
      }
  // Narrower last tiles where the vectors are shorter (AVX2, or the generic 4-wide build of the debug
  // and sanitizer presets): n not a multiple of 16, run where the kernel takes it.
  for (int64_t n : {4, 8, 12, 24, 40, 56})
    for (int64_t m : {1, 7})
      for (bool tb : {false, true})
        if (kernels::gemm_small_k_fits(false, tb, m, n, 37)) {
          INFO("m ", m, " n ", n, " k 37 trans_b ", tb);
          check_gemm<float>(false, tb, m, n, 37, 1.0f, 0.0f, g, &kernels::gemm_small_k);
          check_gemm<float>(true, tb, m, n, 37, 1.5f, 0.5f, g, &kernels::gemm_small_k);
        }
  // what it leaves to OpenBLAS: a long k, a ragged n, both dims large
  CHECK_FALSE(kernels::gemm_small_k_fits(false, false, 128, 128, kernels::kSmallK + 1));
  CHECK_FALSE(kernels::gemm_small_k_fits(false, true, 64, 64, kernels::kLongK + 1));
  CHECK_FALSE(kernels::gemm_small_k_fits(true, false, 300, 64, kernels::kLongK + 1));
  CHECK_FALSE(kernels::gemm_small_k_fits(false, true, 128, 32, 1024));
  CHECK_FALSE(kernels::gemm_small_k_fits(false, false, 64, 65, 32));
  CHECK_FALSE(kernels::gemm_small_k_fits(false, true, 8192, 256, 64));
  CHECK_FALSE(kernels::gemm_small_k_fits(false, false, 64, 64, 0));
  CHECK_FALSE(kernels::gemm_small_k_fits(false, false, 513, 528, 32));
  CHECK_FALSE(kernels::gemm_small_k_fits(false, false, 256, 256, kernels::kTinyK + 1));
}

TEST_CASE("gemm_small_k with a transposed B and few rows of A keeps the bits of B turned round first") {
  // Batch-1 linears (m = 16 tokens against a (512, 128) weight) compute C^T = B op(A)^T with B read
  // in place; the result must be the bits of the plain path, B copied to (k, n) and read by rows.
  Generator g(37);
  struct Size {
    int64_t m, n, k;
  };
  for (const Size s : {Size{16, 512, 128}, Size{16, 384, 128}, Size{32, 128, 512}, Size{48, 256, 64}})
    for (bool ta : {false, true}) {
      INFO("m ", s.m, " n ", s.n, " k ", s.k, " trans_a ", ta);
      const int64_t lda = (ta ? s.m : s.k) + 3, ldb = s.k + 2, ldc = s.n + 1;
      std::vector<float> a = random_vec<float>(g, (ta ? s.k : s.m) * lda), b = random_vec<float>(g, s.n * ldb);
      std::vector<float> bt(static_cast<size_t>(s.k * s.n)), bias = random_vec<float>(g, s.n);
      kernels::transpose(b.data(), ldb, s.n, s.k, bt.data(), s.n);
      const std::vector<float> c0 = random_vec<float>(g, s.m * ldc);
      for (const auto& [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{1.5f, 0.5f}, std::pair{-0.5f, 1.0f}}) {
        std::vector<float> swapped = c0, plain = c0;
        kernels::gemm_small_k(ta, true, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, swapped.data(), ldc);
        kernels::gemm_small_k(ta, false, s.m, s.n, s.k, alpha, a.data(), lda, bt.data(), s.n, beta, plain.data(), ldc);
        CHECK(std::memcmp(swapped.data(), plain.data(), swapped.size() * sizeof(float)) == 0);
      }
      std::vector<float> swapped = c0, plain = c0;
      kernels::gemm_small_k_bias(ta, true, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, bias.data(),
                                 swapped.data(), ldc);
      kernels::gemm_small_k_bias(ta, false, s.m, s.n, s.k, 1.0f, a.data(), lda, bt.data(), s.n, bias.data(),
                                 plain.data(), ldc);
      CHECK(std::memcmp(swapped.data(), plain.data(), swapped.size() * sizeof(float)) == 0);
    }
}

template <typename T> void check_transpose(int64_t rows, int64_t cols) {
  INFO("rows ", rows, " cols ", cols);
  const int64_t ldi = cols + 3, ldo = rows + 5;  // strides padded past the rows
  std::vector<T> in(static_cast<size_t>(std::max<int64_t>(1, rows * ldi)));
  std::iota(in.begin(), in.end(), T(1));
  std::vector<T> out(static_cast<size_t>(std::max<int64_t>(1, cols * ldo)), T(-1));
  kernels::transpose(in.data(), ldi, rows, cols, out.data(), ldo);
  for (int64_t p = 0; p < cols; ++p)
    for (int64_t j = 0; j < ldo; ++j) {
      const T want = j < rows ? in[static_cast<size_t>(j * ldi + p)] : T(-1);  // the padding is not written
      if (out[static_cast<size_t>(p * ldo + j)] != want) {
        FAIL_CHECK("out[", p, ", ", j, "] = ", out[static_cast<size_t>(p * ldo + j)], ", want ", want);
        return;
      }
    }
}

TEST_CASE("transpose copies every value, whole vector blocks and ragged edges") {
  // around one and two vectors' width (4, 8, 16 floats; 2, 4, 8 doubles) and a linear layer's weight
  for (int64_t rows : {0, 1, 7, 16, 17, 33, 512})
    for (int64_t cols : {0, 1, 5, 16, 31, 32, 128}) {
      check_transpose<float>(rows, cols);
      check_transpose<double>(rows, cols);
    }
}

TEST_CASE("gemm_small_k_rows (B's rows at offsets into one buffer) matches reference::gemm on those rows") {
  // Overlapping rows at arbitrary offsets, as a convolution's shifted rows are; k 1100 takes the
  // blocked path for a long k.
  Generator g(32);
  for (int64_t m : {1, 7, 13})
    for (int64_t n : {16, 48, 80})
      for (int64_t k : {1, 37, 300, 1100}) {
        INFO("m ", m, " n ", n, " k ", k);
        const int64_t span = 3 * k + n;
        std::vector<float> buf = random_vec<float>(g, span), a = random_vec<float>(g, m * k);
        std::vector<int64_t> off(static_cast<size_t>(k));
        std::vector<float> b(static_cast<size_t>(k * n));
        for (int64_t p = 0; p < k; ++p) {
          off[static_cast<size_t>(p)] = g.randint(span - n + 1);
          std::copy_n(buf.begin() + off[static_cast<size_t>(p)], n, b.begin() + p * n);
        }
        std::vector<float> c(static_cast<size_t>(m * n), std::numeric_limits<float>::quiet_NaN()), ref(c.size());
        kernels::gemm_small_k_rows(m, n, k, a.data(), k, buf.data(), off.data(), c.data(), n);
        reference::gemm<float>(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, ref.data(), n);
        const double tol = 2e-6 * std::sqrt(static_cast<double>(k)) * 8;
        double worst = 0;  // NaN (a value never written) fails too
        for (size_t i = 0; i < c.size(); ++i)
          worst = std::max(worst, std::isnan(c[i]) ? 1e30 : std::fabs(c[i] - ref[i]) / (1 + std::fabs(ref[i])));
        CHECK(worst <= tol);
      }
}

TEST_CASE("gemm_parallel_bias (a linear layer's bias added in the product) matches reference::gemm") {
  // The shapes of each way gemm_parallel cuts a product, so that each puts the bias in: one call
  // (small), blocks of rows, blocks of columns, slices of k; in gemm_small_k (k 32, n 96; n 32, k 1000)
  // and in OpenBLAS (n 200 not a multiple of a vector; both sides large; a transposed B with a long k).
  Generator g(33);
  struct Size {
    int64_t m, n, k;
  };
  const Size sizes[] = {{5, 48, 7},     {2000, 96, 32}, {2000, 200, 32}, {64, 1000, 40},
                        {40, 32, 1000}, {48, 40, 2000}, {300, 256, 300}};
  for (const Size& s : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("m ", s.m, " n ", s.n, " k ", s.k, " trans_a ", ta, " trans_b ", tb);
        check_gemm_bias<float>(ta, tb, s.m, s.n, s.k, 1.0f, g);
        check_gemm_bias<float>(ta, tb, s.m, s.n, s.k, -1.5f, g);
        check_gemm_bias<double>(ta, tb, s.m, s.n, s.k, 0.5, g);
      }
  CHECK(kernels::gemm_small_k_fits(false, true, 2000, 96, 32));  // the first stage's linear layers
}

TEST_CASE("to_token_rows and from_token_rows: the map's positions to rows of tokens and back, any order") {
  // Sizes around the 16 x 16 blocks of the copy (channels 3, 16, 35; positions 6, 16, 40), a random
  // permutation of the rows; the reference is the plain loop t[s, rows[p], ch] = x[s, ch, p].
  Generator g(50);
  for (DType dt : {DType::Float32, DType::Float64})
    for (auto [c, h, w] : {std::array<int64_t, 3>{3, 2, 3}, {16, 4, 4}, {35, 5, 8}, {20, 1, 1}}) {
      INFO("c ", c, " h ", h, " w ", w);
      const int64_t b = 3, hw = h * w;
      std::vector<int64_t> rows(static_cast<size_t>(hw));
      std::iota(rows.begin(), rows.end(), 0);
      for (int64_t i = hw - 1; i > 0; --i) std::swap(rows[i], rows[static_cast<int64_t>(g.uniform() * (i + 1))]);
      Tensor x = randn({b, c, h, w}, g, dt);
      Tensor t = to_token_rows(x, rows);
      REQUIRE(t.shape() == Shape{b, hw, c});
      const std::vector<double> xv = x.to_vector(), tv = t.to_vector();
      bool same = true;
      for (int64_t s = 0; s < b; ++s)
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t p = 0; p < hw; ++p) same = same && tv[(s * hw + rows[p]) * c + ch] == xv[(s * c + ch) * hw + p];
      CHECK(same);
      CHECK(from_token_rows(t, rows, h, w).to_vector() == xv);
      // a strided input is read through its strides
      Tensor xt = randn({b, c, w, h}, g, dt).transpose(2, 3);
      CHECK(to_token_rows(xt, rows).to_vector() == to_token_rows(xt.contiguous(), rows).to_vector());
    }
  // empty: no channels, no samples
  CHECK(to_token_rows(zeros({2, 0, 2, 2}), {3, 1, 0, 2}).shape() == Shape{2, 4, 0});
  CHECK(from_token_rows(zeros({0, 4, 3}), {3, 1, 0, 2}, 2, 2).shape() == Shape{0, 3, 2, 2});
}

TEST_CASE("matmul reads transposed operands in place: same result as contiguous copies") {
  Generator g(40);
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor a = randn({3, 64, 48}, g, dt), b = randn({3, 40, 64}, g, dt);
    Tensor bt = b.transpose(-1, -2);  // (3, 64, 40) with BLAS's transpose flag
    Tensor fast = matmul(a.transpose(-1, -2), bt), slow = matmul(a.transpose(-1, -2).contiguous(), bt.contiguous());
    mg::testing::check_close(fast, slow, 1e-5, 1e-5);
    // a single big product, split by gemm_parallel, with a transposed left operand
    Tensor p = randn({200, 120}, g, dt), q = randn({200, 90}, g, dt);
    mg::testing::check_close(matmul(p.transpose(0, 1), q), matmul(p.transpose(0, 1).contiguous(), q), 1e-5, 1e-5);
  }
}

TEST_CASE("matmul and linear with an empty dim") {
  // k = 0: BLAS is asked for C = 0 * C with leading dims that must still be valid
  check_values(matmul(zeros({2, 0}), zeros({0, 3})), {0, 0, 0, 0, 0, 0});
  check_values(linear(zeros({2, 0}), zeros({3, 0}), ones({3})), {1, 1, 1, 1, 1, 1});
  check_values(linear(full({2, 0}, 1), full({3, 0}, 1)), {0, 0, 0, 0, 0, 0});
  check_values(linear(full({0, 2}, 1), full({3, 2}, 1)), {});
  CHECK(matmul(zeros({0, 4}), zeros({4, 3})).shape() == Shape{0, 3});
  CHECK(matmul(zeros({2, 0, 4}), zeros({4, 3})).shape() == Shape{2, 0, 3});
}

TEST_CASE("sum's in-place kernels (reduced prefix, kept block in the middle) match the row kernel") {
  Generator g(50);
  Tensor x = randn({37, 300}, g, DType::Float64);
  Tensor by_cols = sum(x, {0});                               // reduced prefix: summed as columns
  Tensor by_rows = sum(x.transpose(0, 1).contiguous(), {1});  // the same numbers, summed as rows
  mg::testing::check_close(by_cols, by_rows, 1e-14, 1e-14);   // both add in double (in different orders)
  Tensor tall = randn({5000, 3}, g, DType::Float64);          // many rows, few columns: blocks of rows
  mg::testing::check_close(sum(tall, {0}), sum(tall.transpose(0, 1).contiguous(), {1}), 1e-13, 1e-13);

  // kept dims between reduced ones (a conv bias gradient): summed in place by lanes
  Tensor y = randn({5, 3, 4, 37}, g, DType::Float64);
  Tensor in_place = sum(y, {0, 2, 3});
  Tensor by_copy = sum(y.permute({1, 0, 2, 3}).contiguous().reshape({3, -1}), {1});
  mg::testing::check_close(in_place, by_copy, 1e-13, 1e-13);
  Tensor z = randn({2, 6, 5, 7, 3}, g, DType::Float32);  // two kept dims, two reduced after them
  mg::testing::check_close(sum(z, {0, 3, 4}), sum(z.permute({1, 2, 0, 3, 4}).contiguous().reshape({6, 5, -1}), {2}),
                           1e-5, 1e-5);
}

// The composition multi_head_attention replaces (torchvision's attention, op by op).
Tensor attention_composed(const Tensor& qkv, const Tensor& bias, int64_t heads, double scale) {
  const int64_t c = qkv.size(-1) / 3, n = qkv.size(-2), hd = c / heads;
  std::vector<Tensor> parts = qkv.chunk(3, -1);
  auto split = [&](const Tensor& t) {  // (B, n, C) -> (B, heads, n, hd)
    return t.reshape({-1, n, heads, hd}).permute({0, 2, 1, 3});
  };
  Tensor q = split(parts[0]), k = mul(split(parts[1]), scale), v = split(parts[2]);
  Tensor p = softmax(add(matmul(q, k.transpose(-1, -2)), bias.unsqueeze(0)), -1);
  return matmul(p, v).permute({0, 2, 1, 3}).reshape(qkv.shape().size() == 2 ? Shape{n, c} : Shape{-1, n, c});
}

TEST_CASE("multi_head_attention matches the composition of matmul, softmax and the head permutes") {
  Generator g(60);
  for (DType dt : {DType::Float64, DType::Float32}) {
    const double tol = dt == DType::Float64 ? 1e-12 : 2e-5;
    struct Case {
      int64_t groups, n, heads, hd;
    };
    for (const Case& k : {Case{6, 16, 1, 32}, Case{3, 16, 4, 8}, Case{2, 7, 3, 5}, Case{1, 49, 2, 32}}) {
      INFO(std::string(dtype_name(dt)), " groups ", k.groups, " n ", k.n, " heads ", k.heads, " hd ", k.hd);
      const int64_t c = k.heads * k.hd;
      Tensor qkv = randn({k.groups, k.n, 3 * c}, g, dt), bias = randn({k.heads, k.n, k.n}, g, dt);
      Tensor gy = randn({k.groups, k.n, c}, g, dt);
      Tensor q1 = qkv.detach().requires_grad_(), b1 = bias.detach().requires_grad_();
      Tensor q2 = qkv.detach().requires_grad_(), b2 = bias.detach().requires_grad_();
      Tensor fused = multi_head_attention(q1, b1, k.heads, 0.3);
      Tensor ref = attention_composed(q2, b2, k.heads, 0.3);
      mg::testing::check_close(fused, ref, tol, tol);
      sum(mul(fused, gy)).backward();
      sum(mul(ref, gy)).backward();
      mg::testing::check_close(q1.grad(), q2.grad(), tol, tol);
      mg::testing::check_close(b1.grad(), b2.grad(), tol, tol * 10);
    }
  }
}

// BatchNorm's lane sums against the sequential double sums, on rows shorter and longer than the
// lane count and with a tail; the fused training forward and backward (channels in blocks) against the
// separate kernels (channel by channel: the same arithmetic, so the same bits) and against the formulas.
TEST_CASE("batch_norm kernels match their references and each other") {
  KernelPathGuard fast(KernelPath::fast);  // the fast kernels, whatever MAXGRAD_KERNELS says
  Generator g(70);
  for (const kernels::BnGeom geo :
       {kernels::BnGeom{3, 5, 37}, kernels::BnGeom{4, 2, 16}, kernels::BnGeom{2, 3, 5}, kernels::BnGeom{9, 4, 1},
        kernels::BnGeom{2, 37, 3}, kernels::BnGeom{2, 3, 1500}}) {  // blocks of 16 channels and a rest; one channel
    INFO("n ", geo.n, " c ", geo.c, " inner ", geo.inner);
    const int64_t numel = geo.n * geo.c * geo.inner;
    Tensor x = add(mul(randn({numel}, g), 3.0), 2.0), gy = randn({numel}, g);
    Tensor w = randn({geo.c}, g), b = randn({geo.c}, g);
    const float *px = x.data<float>(), *pg = gy.data<float>();
    const auto uc = static_cast<size_t>(geo.c);
    std::vector<double> s(uc), s_ref(uc), sq(uc), sq_ref(uc);
    kernels::bn_channel_sums(px, geo, s.data());
    reference::bn_channel_sums(px, geo, s_ref.data());
    std::vector<double> mean(uc);
    for (size_t c = 0; c < uc; ++c) {
      CHECK(s[c] == doctest::Approx(s_ref[c]).epsilon(1e-12));
      mean[c] = s[c] / static_cast<double>(geo.n * geo.inner);
    }
    kernels::bn_channel_sq_dev_sums(px, geo, mean.data(), sq.data());
    reference::bn_channel_sq_dev_sums(px, geo, mean.data(), sq_ref.data());
    for (size_t c = 0; c < uc; ++c) CHECK(sq[c] == doctest::Approx(sq_ref[c]).epsilon(1e-12));

    // fused training forward = sums + bn_affine + bn_normalize, bit for bit
    Tensor y = Tensor::empty({numel}), y2 = Tensor::empty({numel});
    std::vector<float> m(uc), v(uc), r(uc), scale(uc), shift(uc), sc(uc), sh(uc);
    kernels::bn_forward_training(px, geo, 1e-3, w.data<float>(), b.data<float>(), kernels::BnAct::None, y.data<float>(),
                                 m.data(), v.data(), r.data(), sc.data(), sh.data());
    for (size_t c = 0; c < uc; ++c) {
      const double var = sq[c] / static_cast<double>(geo.n * geo.inner);
      const auto a = kernels::bn_affine(mean[c], var, 1e-3, w.data<float>(), b.data<float>(), static_cast<int64_t>(c));
      CHECK(m[c] == static_cast<float>(mean[c]));
      CHECK(r[c] == a.rstd);
      CHECK(sc[c] == a.scale);
      CHECK(sh[c] == a.shift);
      scale[c] = a.scale, shift[c] = a.shift;
    }
    kernels::bn_normalize(px, geo, scale.data(), shift.data(), y2.data<float>());
    CHECK(mg::testing::bitwise_equal(y, y2));

    // fused backward = bn_grad_sums + bn_input_grad; its sums against the reference
    std::vector<double> sg(uc), sgx(uc), sg2(uc), sgx2(uc), sg_ref(uc), sgx_ref(uc);
    Tensor gx = Tensor::empty({numel}), gx2 = Tensor::empty({numel});
    kernels::bn_backward(pg, px, geo, m.data(), r.data(), w.data<float>(), b.data<float>(), true, kernels::BnAct::None,
                         sc.data(), sh.data(), gx.data<float>(), sg.data(), sgx.data());
    kernels::bn_grad_sums(pg, px, geo, m.data(), r.data(), sg2.data(), sgx2.data());
    reference::bn_grad_sums(pg, px, geo, m.data(), r.data(), sg_ref.data(), sgx_ref.data());
    std::vector<float> k(uc), mg_(uc), mgx(uc);
    for (size_t c = 0; c < uc; ++c) {
      CHECK(sg[c] == sg2[c]);
      CHECK(sgx[c] == sgx2[c]);
      CHECK(sg[c] == doctest::Approx(sg_ref[c]).epsilon(1e-9).scale(1));
      CHECK(sgx[c] == doctest::Approx(sgx_ref[c]).epsilon(1e-9).scale(1));
      const double count = static_cast<double>(geo.n * geo.inner);
      k[c] = w.data<float>()[c] * r[c], mg_[c] = static_cast<float>(sg[c] / count),
      mgx[c] = static_cast<float>(sgx[c] / count);
    }
    kernels::bn_input_grad(pg, px, geo, m.data(), r.data(), k.data(), mg_.data(), mgx.data(), gx2.data<float>());
    CHECK(mg::testing::bitwise_equal(gx, gx2));
  }
}

// The depthwise phase-plane kernels against the reference loops (core/reference/conv.h), channel by
// channel (forward, input gradient, weight gradient), for kernel sizes 1 to 5, strides 1 to 3 and
// paddings 0 to k/2 on planes that do and do not divide by the stride.
TEST_CASE("depthwise phase-plane kernels match the reference loops") {
  Generator g(80);
  for (int64_t k : {int64_t(1), int64_t(2), int64_t(3), int64_t(5)})
    for (int64_t stride : {int64_t(1), int64_t(2), int64_t(3)})
      for (int64_t pad = 0; pad <= k / 2; ++pad)
        // planes the stride divides (the split path, when the padding is (k - 1) / 2) and others
        for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{
                 {k, k + 1}, {4, 5}, {7, 8}, {9, 10}, {8, 8}, {12, 6}, {6, 12}, {9, 9}}) {
          if (h < k || w < k) continue;
          const int64_t c = 3;
          const kernels::ConvGeom geo{
              1, h, w, k, k, stride, pad, (h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1};
          INFO("k ", k, " stride ", stride, " pad ", pad, " h ", h, " w ", w);
          std::vector<double> x = random_vec<double>(g, c * h * w), wt = random_vec<double>(g, c * k * k);
          std::vector<double> bias = random_vec<double>(g, c), gy = random_vec<double>(g, c * geo.ho * geo.wo);
          std::vector<double> scratch(static_cast<size_t>(kernels::dw_scratch_size(geo)));
          std::vector<double> y(gy.size()), y_ref(gy.size()), gx(x.size()), gx_ref(x.size());
          std::vector<double> gw(wt.size()), gw_ref(wt.size());
          const kernels::Conv2dShape shape{1, c, h, w, c, k, k, stride, pad, c, geo.ho, geo.wo};
          std::vector<double> acc(static_cast<size_t>(c * kernels::dw_acc_size(geo)), 0.0);
          kernels::dw_forward(x.data(), wt.data(), bias.data(), geo, 0, c, y.data(), scratch.data());
          reference::conv2d_forward(shape, x.data(), wt.data(), bias.data(), y_ref.data());
          kernels::dw_backward_input(gy.data(), wt.data(), geo, 0, c, gx.data(), scratch.data());
          reference::conv2d_backward(shape, gy.data(), x.data(), wt.data(), gx_ref.data(), gw_ref.data());
          kernels::dw_backward_weight_acc(gy.data(), x.data(), geo, 0, c, acc.data(), scratch.data());
          kernels::dw_reduce(acc.data(), geo, 0, c, gw.data());
          for (size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == doctest::Approx(y_ref[i]).epsilon(1e-12));
          for (size_t i = 0; i < gx.size(); ++i) REQUIRE(gx[i] == doctest::Approx(gx_ref[i]).epsilon(1e-12));
          for (size_t i = 0; i < gw.size(); ++i) REQUIRE(gw[i] == doctest::Approx(gw_ref[i]).epsilon(1e-12));
        }
}

// Bit for bit: the 3s2 passes add the same values in the same order as the general ones. Signed zeros
// in the input check that a padding tap's 0 is added where the general pass adds it.
template <typename T> void check_pool_3s2(Generator& gen) {
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{
           {32, 32}, {16, 16}, {8, 8}, {4, 64}, {6, 32}, {8, 4}, {16, 2}, {2, 32}, {10, 10}, {7, 8}}) {
    INFO("h ", h, " w ", w, " lanes ", kernels::loaded_vec_lanes<T>());
    const kernels::PoolGeom geo{h, w, 3, 2, 1, (h - 1) / 2 + 1, (w - 1) / 2 + 1, true};
    const kernels::AxisWindows rows(geo.ho, geo.h, geo), cols(geo.wo, geo.w, geo);
    // MaxViT's planes take the vector passes with any vector width; the others only where they fit
    if (h == w && h >= 8 && h % 8 == 0) CHECK(kernels::pool_fits_3s2<T>(geo));
    if (h % 2 || w % 2) CHECK_FALSE(kernels::pool_fits_3s2<T>(geo));
    if (!kernels::pool_fits_3s2<T>(geo)) continue;
    std::vector<T> x = random_vec<T>(gen, h * w), gd = random_vec<T>(gen, geo.ho * geo.wo);
    for (size_t i = 0; i < x.size(); i += 7) x[i] = -T(0);
    for (size_t i = 0; i < gd.size(); i += 5) gd[i] = -T(0);
    std::vector<T> hs(static_cast<size_t>(h * geo.wo)), hs_ref(hs.size()), y(gd.size()), y_ref(gd.size());
    std::vector<T> vs(hs.size()), vs_ref(hs.size()), gx(x.size()), gx_ref(x.size());
    kernels::pool_columns_3s2(x.data(), geo, hs.data());
    kernels::pool_columns(x.data(), geo, cols, hs_ref.data());
    kernels::pool_rows_3s2(hs_ref.data(), geo, y.data());
    kernels::pool_rows(hs_ref.data(), geo, rows, y_ref.data());
    kernels::pool_rows_backward_3s2(gd.data(), geo, vs.data());
    kernels::pool_rows_backward(gd.data(), geo, rows, vs_ref.data());
    kernels::pool_columns_backward_3s2(vs_ref.data(), geo, gx.data());
    kernels::pool_columns_backward(vs_ref.data(), geo, cols, gx_ref.data());
    auto same_bits = [](const std::vector<T>& a, const std::vector<T>& b) {
      return std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
    };
    CHECK(same_bits(hs, hs_ref));
    CHECK(same_bits(y, y_ref));
    CHECK(same_bits(vs, vs_ref));
    CHECK(same_bits(gx, gx_ref));
  }
}

TEST_CASE("avg_pool2d's 3x3 stride-2 vector passes give the general passes' bits") {
  Generator gen(81);
  check_pool_3s2<float>(gen);
  check_pool_3s2<double>(gen);
}

template <typename T> void check_dw3x3(Generator& gen, double tol) {
  for (int64_t stride : {1, 2})
    for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{
             {32, 32}, {16, 16}, {8, 8}, {4, 64}, {8, 32}, {16, 4}, {64, 2}, {4, 4}, {10, 10}, {2, 8}, {32, 1}}) {
      const kernels::ConvGeom geo{1, h, w, 3, 3, stride, 1, stride == 1 ? h : h / 2, stride == 1 ? w : w / 2};
      INFO("stride ", stride, " h ", h, " w ", w, " lanes ", kernels::loaded_vec_lanes<T>());
      // MaxViT's planes, on every target
      if (h == w && h % 4 == 0 && h * h / (stride * stride) >= 16) CHECK(kernels::dw3x3_fits<T>(geo));
      if (!kernels::dw3x3_fits<T>(geo)) continue;
      const int64_t n = geo.ho * geo.wo, lanes = kernels::loaded_vec_lanes<T>();
      std::vector<T> x = random_vec<T>(gen, h * w), wt = random_vec<T>(gen, 9), gy = random_vec<T>(gen, n);
      const T bias = static_cast<T>(gen.normal());
      std::vector<T> y(n), y_ref(n), gx(x.size()), gx_ref(x.size()), acc(9 * lanes, T(0)), gw_ref(9);
      const kernels::Conv2dShape shape{1, 1, h, w, 1, 3, 3, stride, 1, 1, geo.ho, geo.wo};
      kernels::dw3x3_forward(x.data(), wt.data(), bias, geo, y.data());
      reference::conv2d_forward(shape, x.data(), wt.data(), &bias, y_ref.data());
      kernels::dw3x3_backward_input(gy.data(), wt.data(), geo, gx.data());
      reference::conv2d_backward(shape, gy.data(), x.data(), wt.data(), gx_ref.data(), gw_ref.data());
      T* a[9];
      for (int64_t t = 0; t < 9; ++t) a[t] = acc.data() + t * lanes;
      kernels::dw3x3_weight_lanes(gy.data(), x.data(), geo, a);
      for (int64_t i = 0; i < n; ++i) REQUIRE(y[i] == doctest::Approx(y_ref[i]).epsilon(tol));
      for (size_t i = 0; i < gx.size(); ++i) REQUIRE(gx[i] == doctest::Approx(gx_ref[i]).epsilon(tol));
      for (int64_t t = 0; t < 9; ++t) {
        double s = 0;
        for (int64_t l = 0; l < lanes; ++l) s += a[t][l];
        REQUIRE(s == doctest::Approx(gw_ref[t]).epsilon(tol));
      }
    }
}

TEST_CASE("depthwise 3x3 register kernels (stride 1 and 2) match the reference loops") {
  Generator gen(82);
  check_dw3x3<float>(gen, 1e-4);
  check_dw3x3<double>(gen, 1e-12);
}

TEST_CASE("batch_norm_gelu is gelu(batch_norm(x)): values, gradients, running statistics") {
  Generator g(90);
  for (DType dt : {DType::Float64, DType::Float32}) {
    const double tol = dt == DType::Float64 ? 1e-12 : 2e-5;
    for (bool training : {true, false}) {
      INFO(std::string(dtype_name(dt)), training ? " training" : " eval");
      Tensor x = add(mul(randn({4, 3, 5, 6}, g, dt), 2.0), 0.5), gy = randn({4, 3, 5, 6}, g, dt);
      Tensor w = randn({3}, g, dt), b = randn({3}, g, dt);
      Tensor rm1 = mul(randn({3}, g, dt), 0.1), rv1 = add(rand({3}, g, dt), 0.5);
      Tensor rm2 = rm1.clone(), rv2 = rv1.clone();
      Tensor x1 = x.detach().requires_grad_(), w1 = w.detach().requires_grad_(), b1 = b.detach().requires_grad_();
      Tensor x2 = x.detach().requires_grad_(), w2 = w.detach().requires_grad_(), b2 = b.detach().requires_grad_();
      Tensor fused = batch_norm_gelu(x1, rm1, rv1, w1, b1, training, 0.1, 1e-3);
      Tensor ref = gelu(batch_norm(x2, rm2, rv2, w2, b2, training, 0.1, 1e-3));
      mg::testing::check_close(fused, ref, tol, tol);
      mg::testing::check_close(rm1, rm2, tol, tol);
      mg::testing::check_close(rv1, rv2, tol, tol);
      sum(mul(fused, gy)).backward();
      sum(mul(ref, gy)).backward();
      mg::testing::check_close(x1.grad(), x2.grad(), tol * 10, tol * 10);
      mg::testing::check_close(w1.grad(), w2.grad(), tol * 10, tol * 10);
      mg::testing::check_close(b1.grad(), b2.grad(), tol * 10, tol * 10);
    }
  }
}

TEST_CASE("layer_norm kernels match their references") {
  KernelPathGuard fast(KernelPath::fast);  // the fast kernels, whatever MAXGRAD_KERNELS says
  Generator g(100);
  for (const kernels::LnGeom geo : {kernels::LnGeom{300, 32}, kernels::LnGeom{7, 13}, kernels::LnGeom{600, 5}}) {
    for (bool affine : {true, false}) {
      INFO("rows ", geo.rows, " c ", geo.c, affine ? " affine" : "");
      const int64_t numel = geo.rows * geo.c;
      Tensor x = add(mul(randn({numel}, g, DType::Float64), 2.0), 1.0), gy = randn({numel}, g, DType::Float64);
      Tensor w = randn({geo.c}, g, DType::Float64), b = randn({geo.c}, g, DType::Float64);
      const double* pw = affine ? w.data<double>() : nullptr;
      const double* pb = affine ? b.data<double>() : nullptr;
      const auto un = static_cast<size_t>(numel), ur = static_cast<size_t>(geo.rows), uc = static_cast<size_t>(geo.c);
      std::vector<double> y(un), y_ref(un), m(ur), m_ref(ur), r(ur), r_ref(ur);
      kernels::ln_forward(x.data<double>(), geo, 1e-5, pw, pb, y.data(), m.data(), r.data());
      reference::layer_norm_forward(x.data<double>(), geo, 1e-5, pw, pb, y_ref.data(), m_ref.data(), r_ref.data());
      for (size_t i = 0; i < un; ++i) REQUIRE(y[i] == doctest::Approx(y_ref[i]).epsilon(1e-12));
      std::vector<double> gx(un), gx_ref(un), dw(uc), dw_ref(uc), db(uc), db_ref(uc);
      kernels::ln_backward(gy.data<double>(), x.data<double>(), geo, m.data(), r.data(), pw, gx.data(), dw.data(),
                           db.data());
      reference::layer_norm_backward(gy.data<double>(), x.data<double>(), geo, m.data(), r.data(), pw, gx_ref.data(),
                                     dw_ref.data(), db_ref.data());
      for (size_t i = 0; i < un; ++i) REQUIRE(gx[i] == doctest::Approx(gx_ref[i]).epsilon(1e-10).scale(1));
      for (size_t i = 0; i < uc; ++i) {
        CHECK(dw[i] == doctest::Approx(dw_ref[i]).epsilon(1e-10));
        CHECK(db[i] == doctest::Approx(db_ref[i]).epsilon(1e-10));
      }
    }
  }
}

// Float rows of whole vectors take the forward's 8-rows-at-a-time path on AVX-512 (the row loops
// elsewhere): rows not a multiple of 8, C of 1, 2 and 3 float vectors and one of neither, with and
// without the affine parameters.
TEST_CASE("layer_norm's float kernels match their references") {
  KernelPathGuard fast(KernelPath::fast);  // the fast kernels, whatever MAXGRAD_KERNELS says
  Generator g(101);
  for (const kernels::LnGeom geo : {kernels::LnGeom{301, 32}, kernels::LnGeom{13, 48}, kernels::LnGeom{70, 16},
                                    kernels::LnGeom{9, 128}, kernels::LnGeom{5, 20}}) {
    for (bool affine : {true, false}) {
      INFO("rows ", geo.rows, " c ", geo.c, affine ? " affine" : "");
      const int64_t numel = geo.rows * geo.c;
      Tensor x = add(mul(randn({numel}, g), 2.0), 1.0), gy = randn({numel}, g);
      Tensor w = randn({geo.c}, g), b = randn({geo.c}, g);
      const float* pw = affine ? w.data<float>() : nullptr;
      const float* pb = affine ? b.data<float>() : nullptr;
      const auto un = static_cast<size_t>(numel), ur = static_cast<size_t>(geo.rows), uc = static_cast<size_t>(geo.c);
      std::vector<float> y(un), y_ref(un), m(ur), m_ref(ur), r(ur), r_ref(ur);
      kernels::ln_forward(x.data<float>(), geo, 1e-5, pw, pb, y.data(), m.data(), r.data());
      reference::layer_norm_forward(x.data<float>(), geo, 1e-5, pw, pb, y_ref.data(), m_ref.data(), r_ref.data());
      for (size_t i = 0; i < ur; ++i) {
        REQUIRE(m[i] == doctest::Approx(m_ref[i]).epsilon(1e-6).scale(1));
        REQUIRE(r[i] == doctest::Approx(r_ref[i]).epsilon(1e-6));
      }
      for (size_t i = 0; i < un; ++i) REQUIRE(y[i] == doctest::Approx(y_ref[i]).epsilon(1e-5).scale(1));
      std::vector<float> gx(un), gx_ref(un);
      std::vector<double> dw(uc), dw_ref(uc), db(uc), db_ref(uc);
      kernels::ln_backward(gy.data<float>(), x.data<float>(), geo, m.data(), r.data(), pw, gx.data(), dw.data(),
                           db.data());
      reference::layer_norm_backward(gy.data<float>(), x.data<float>(), geo, m.data(), r.data(), pw, gx_ref.data(),
                                     dw_ref.data(), db_ref.data());
      for (size_t i = 0; i < un; ++i) REQUIRE(gx[i] == doctest::Approx(gx_ref[i]).epsilon(1e-4).scale(1));
      for (size_t i = 0; i < uc; ++i) {
        CHECK(dw[i] == doctest::Approx(dw_ref[i]).epsilon(1e-5).scale(1));
        CHECK(db[i] == doctest::Approx(db_ref[i]).epsilon(1e-5).scale(1));
      }
    }
  }
}
