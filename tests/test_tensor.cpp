// Tensor: creation, the views (and that they share storage), contiguous, printing, in-place writes
// with the version counter, and the messages of the errors a user can make with them.
#include <doctest/doctest.h>

#include <sstream>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"
#include "helpers.h"

using namespace mg;
using mg::testing::check_values;

namespace {
// The address of element [0, ..., 0]: equal for two views that start at the same element.
const void* first_element(const Tensor& t) {
  return static_cast<const char*>(t.impl().storage->data()) + t.offset() * itemsize(t.dtype());
}
bool same_storage(const Tensor& a, const Tensor& b) { return a.impl().storage == b.impl().storage; }
Tensor iota(const Shape& s, DType dt = DType::Float32) {
  return arange(0, static_cast<double>(numel_of(s)), 1, dt).reshape(s);
}
}  // namespace

// ---- creation ----

TEST_CASE("empty, from_vector and scalar set shape, contiguous strides and dtype") {
  Tensor e = Tensor::empty({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{12, 4, 1});
  CHECK(e.offset() == 0);
  CHECK(e.dtype() == DType::Float32);
  CHECK(e.numel() == 24);
  CHECK(e.dim() == 3);
  CHECK(e.size(-1) == 4);
  CHECK(e.is_contiguous());
  CHECK(e.info() == "float32[2, 3, 4]");

  Tensor v = Tensor::from_vector({1, 2.5, -3, 4, 5, 6}, {2, 3}, DType::Float64);
  CHECK(v.dtype() == DType::Float64);
  CHECK(v.at({0, 1}) == 2.5);
  CHECK(v.at({1, 0}) == 4);
  CHECK(v.to_vector() == std::vector<double>{1, 2.5, -3, 4, 5, 6});

  Tensor s = Tensor::scalar(3.5);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.5);

  Tensor i = Tensor::from_vector_i64({7, -2, 9}, {3});
  CHECK(i.dtype() == DType::Int64);
  CHECK(i.at({1}) == -2);
  CHECK(i.data<int64_t>()[2] == 9);

  Tensor z = Tensor::empty({0, 5});
  CHECK(z.numel() == 0);
  CHECK(z.to_vector().empty());
}

TEST_CASE("factory functions") {
  check_values(zeros({2, 2}), {0, 0, 0, 0});
  check_values(ones({3}, DType::Float64), {1, 1, 1});
  check_values(full({2}, -1.5), {-1.5, -1.5});
  CHECK(zeros_like(ones({2, 3}, DType::Float64)).info() == "float64[2, 3]");
  CHECK(ones_like(zeros({4}, DType::Int64)).to_vector() == std::vector<double>{1, 1, 1, 1});
  Tensor a = arange(5);
  CHECK(a.dtype() == DType::Int64);
  CHECK(a.to_vector() == std::vector<double>{0, 1, 2, 3, 4});
  check_values(arange(1.0, 2.0, 0.25), {1, 1.25, 1.5, 1.75});
  check_values(arange(3.0, 0.0, -1.0, DType::Float64), {3, 2, 1});
  CHECK(arange(2.0, 2.0).numel() == 0);
}

TEST_CASE("random tensors: same seed, same numbers; trunc_normal stays in range") {
  Generator g1(42), g2(42), g3(43);
  Tensor a = randn({100}, g1), b = randn({100}, g2), c = randn({100}, g3);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.to_vector() != c.to_vector());
  Tensor u = rand({1000}, g1, DType::Float64);
  double lo = 1, hi = 0, mean = 0;
  for (double v : u.to_vector()) lo = std::min(lo, v), hi = std::max(hi, v), mean += v / 1000;
  CHECK(lo >= 0);
  CHECK(hi < 1);
  CHECK(mean == doctest::Approx(0.5).epsilon(0.05));
  Tensor t = trunc_normal({1000}, 0, 1, g1, -0.5, 0.5);
  for (double v : t.to_vector()) REQUIRE((v >= -0.5 && v <= 0.5));
  Tensor n = normal({2000}, 3, 0.5, g1, DType::Float64);
  double m = 0;
  for (double v : n.to_vector()) m += v / 2000;
  CHECK(m == doctest::Approx(3).epsilon(0.02));
}

TEST_CASE("to converts dtype and keeps values") {
  Tensor a = Tensor::from_vector({1.5, -2.25, 3}, {3});
  Tensor d = a.to(DType::Float64);
  CHECK(d.dtype() == DType::Float64);
  CHECK(d.to_vector() == a.to_vector());
  CHECK(a.to(DType::Float32).same(a));  // no-op returns the same handle
  Tensor i = a.to(DType::Int64);
  CHECK(i.to_vector() == std::vector<double>{1, -2, 3});  // truncation, as static_cast
}

// ---- views ----

TEST_CASE("reshape and view share storage when strides allow, reshape copies otherwise") {
  Tensor x = iota({2, 3, 4});
  Tensor v = x.view({6, 4});
  CHECK(same_storage(v, x));
  CHECK(v.strides() == Shape{4, 1});
  Tensor r = x.reshape({4, -1});
  CHECK(r.shape() == Shape{4, 6});
  CHECK(same_storage(r, x));
  CHECK(x.view({-1}).shape() == Shape{24});

  Tensor t = x.transpose(0, 2);  // (4, 3, 2), not viewable as flat
  Tensor rt = t.reshape({24});
  CHECK_FALSE(same_storage(rt, x));
  CHECK(rt.at({1}) == 12);  // t[0, 0, 1] = x[1, 0, 0]
  // merging dims that are contiguous with each other works on a non-contiguous tensor
  Tensor p = x.permute({1, 0, 2});  // (3, 2, 4): the last dim is still contiguous
  Tensor pv = p.view({3, 2, 2, 2});
  CHECK(same_storage(pv, x));
  CHECK(pv.at({2, 1, 1, 0}) == x.at({1, 2, 2}));
  CHECK_THROWS_MG(p.view({6, 4}), "view", "[3, 2, 4]", "[6, 4]", "reshape()");
  check_values(p.reshape({6, 4}).narrow(0, 1, 1), {12, 13, 14, 15});
}

TEST_CASE("permute, transpose, flatten, squeeze, unsqueeze") {
  Tensor x = iota({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK_FALSE(p.is_contiguous());
  CHECK(p.at({3, 1, 2}) == x.at({1, 2, 3}));
  Tensor p2 = x.permute({-1, 0, 1});  // negative dims wrap
  CHECK(p2.strides() == p.strides());

  Tensor t = x.transpose(-1, 0);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.at({3, 0, 1}) == x.at({1, 0, 3}));

  CHECK(x.flatten().shape() == Shape{24});
  CHECK(x.flatten(1).shape() == Shape{2, 12});
  CHECK(x.flatten(0, 1).shape() == Shape{6, 4});
  CHECK(Tensor::scalar(2).flatten().shape() == Shape{1});

  Tensor u = x.unsqueeze(1);
  CHECK(u.shape() == Shape{2, 1, 3, 4});
  CHECK(x.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  CHECK(u.squeeze(1).shape() == Shape{2, 3, 4});
  CHECK(x.squeeze(0).shape() == Shape{2, 3, 4});  // not size 1: no-op, as PyTorch
  CHECK(same_storage(u, x));
  // unsqueeze of a non-contiguous tensor is still a view
  Tensor pu = p.unsqueeze(0);
  CHECK(same_storage(pu, x));
  CHECK(pu.at({0, 3, 1, 2}) == 23);
}

TEST_CASE("expand uses stride 0, and -1 keeps a dim") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3, 1});
  Tensor e = x.expand({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(same_storage(e, x));
  CHECK(e.at({1, 2, 3}) == 3);
  CHECK(x.expand({-1, 5}).shape() == Shape{3, 5});
  CHECK(x.expand({3, 1}).same(x));  // nothing to expand: the same tensor
  check_values(e.contiguous().select(0, 1).select(0, 1), {2, 2, 2, 2});
}

TEST_CASE("narrow, select, chunk, split") {
  Tensor x = iota({4, 5});
  Tensor n = x.narrow(1, 1, 3);
  CHECK(n.shape() == Shape{4, 3});
  CHECK(n.offset() == 1);
  CHECK(n.strides() == Shape{5, 1});
  check_values(n.select(0, 2), {11, 12, 13});
  check_values(x.narrow(0, -1, 1), {15, 16, 17, 18, 19});  // negative start counts from the end
  check_values(x.select(1, -1), {4, 9, 14, 19});
  CHECK(x.select(0, 3).offset() == 15);

  auto c = x.chunk(2, 1);  // 5 -> 3 + 2, PyTorch's rounding
  REQUIRE(c.size() == 2);
  CHECK(c[0].shape() == Shape{4, 3});
  CHECK(c[1].shape() == Shape{4, 2});
  check_values(c[1].select(0, 0), {3, 4});
  CHECK(x.chunk(3, 0).size() == 2);  // 4 rows in chunks of 2: PyTorch also returns 2

  auto s = x.split(2, 1);
  REQUIRE(s.size() == 3);
  CHECK(s[2].shape() == Shape{4, 1});
  check_values(s[2], {4, 9, 14, 19});
  for (const Tensor& part : s) CHECK(same_storage(part, x));
}

TEST_CASE("views of views share storage: a write through one shows in all") {
  Tensor x = zeros({2, 3, 4});
  const uint64_t v0 = x.version();
  Tensor a = x.permute({2, 1, 0}).narrow(0, 1, 2).select(1, 2);  // (2, 2): x[:, 2, 1:3] transposed
  Tensor b = x.view({6, 4}).narrow(0, 5, 1).squeeze(0);          // x[1, 2, :]
  CHECK(same_storage(a, x));
  CHECK(same_storage(b, x));
  a.fill_(7);
  check_values(b, {0, 7, 7, 0});
  CHECK(x.at({0, 2, 1}) == 7);
  CHECK(x.at({0, 2, 3}) == 0);
  b.narrow(0, 3, 1).fill_(-1);
  CHECK(x.at({1, 2, 3}) == -1);
  CHECK(first_element(b) == first_element(x.select(0, 1).select(0, 2)));
  // the version counter belongs to the storage, so every view sees every write
  CHECK(a.version() == x.version());
  CHECK(x.version() == v0 + 2);
}

// ---- contiguous, clone ----

TEST_CASE("contiguous returns self when contiguous, a row-major copy otherwise") {
  Tensor x = iota({2, 3});
  CHECK(x.contiguous().same(x));
  Tensor t = x.transpose(0, 1);
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK_FALSE(same_storage(c, x));
  CHECK(c.strides() == Shape{2, 1});
  check_values(c, {0, 3, 1, 4, 2, 5});
  // size-1 dims may have any stride and still count as contiguous
  Tensor one = x.narrow(0, 1, 1);
  CHECK(one.is_contiguous());
  CHECK(one.contiguous().same(one));
  Tensor cl = x.clone();
  CHECK_FALSE(same_storage(cl, x));
  check_values(cl, {0, 1, 2, 3, 4, 5});
  // expanded and strided tensors copy into plain row-major order
  check_values(Tensor::from_vector({1, 2}, {2, 1}).expand({2, 3}).contiguous(), {1, 1, 1, 2, 2, 2});
  check_values(iota({6}).narrow(0, 1, 4).view({2, 2}).transpose(0, 1).contiguous(), {1, 3, 2, 4});
}

// ---- printing ----

TEST_CASE("printing follows PyTorch's layout") {
  CHECK(to_string(Tensor::from_vector({1, 2.5, -3, 4}, {2, 2})) ==
        "tensor([[ 1.0000,  2.5000],\n"
        "        [-3.0000,  4.0000]])");
  CHECK(to_string(Tensor::from_vector_i64({1, 20, 300}, {3})) == "tensor([  1,  20, 300], dtype=int64)");
  CHECK(to_string(Tensor::scalar(0.5)) == "tensor(0.5000)");
  CHECK(to_string(Tensor::scalar(2, DType::Float64)) == "tensor(2.0000, dtype=float64)");
  // three dims: blocks separated by a blank line, as PyTorch does
  CHECK(to_string(arange(8).reshape({2, 2, 2})) ==
        "tensor([[[0, 1],\n"
        "         [2, 3]],\n"
        "\n"
        "        [[4, 5],\n"
        "         [6, 7]]], dtype=int64)");
  // a strided view prints its logical values
  CHECK(to_string(arange(6).reshape({2, 3}).transpose(0, 1)) ==
        "tensor([[0, 3],\n"
        "        [1, 4],\n"
        "        [2, 5]], dtype=int64)");
  CHECK(to_string(Tensor::from_vector({1e-5, 2e5}, {2})) == "tensor([1.0000e-05, 2.0000e+05])");
  CHECK(to_string(Tensor()) == "tensor(undefined)");
}

TEST_CASE("printing elides long tensors like PyTorch (more than 1000 elements)") {
  // 20 elements: all shown
  CHECK(to_string(arange(20)) ==
        "tensor([ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19], dtype=int64)");
  std::string big = to_string(arange(2000).reshape({2, 1000}));
  CHECK(big ==
        "tensor([[   0,    1,    2,  ...,  997,  998,  999],\n"
        "        [1000, 1001, 1002,  ..., 1997, 1998, 1999]], dtype=int64)");
}

TEST_CASE("printing shows requires_grad and grad_fn") {
  Tensor a = ones({2}).requires_grad_();
  CHECK(to_string(a) == "tensor([1.0000, 1.0000], requires_grad=True)");
  CHECK(to_string(mul(a, 2.0)) == "tensor([2.0000, 2.0000], grad_fn=<mul_scalar>)");
  std::ostringstream o;
  o << a.detach();
  CHECK(o.str() == "tensor([1.0000, 1.0000])");
}

// ---- in-place writes ----

TEST_CASE("in-place ops write through views and bump the version counter") {
  Tensor x = Tensor::from_vector({0, 0, 0, 0, 0, 0}, {2, 3});
  CHECK(x.version() == 0);
  x.fill_(1);
  CHECK(x.version() == 1);
  x.copy_(Tensor::from_vector({1, 2, 3}, {3}));  // broadcast over rows
  check_values(x, {1, 2, 3, 1, 2, 3});
  CHECK(x.version() == 2);
  x.add_(Tensor::from_vector({10, 20}, {2, 1}), 0.5);
  check_values(x, {6, 7, 8, 11, 12, 13});
  x.mul_(2);
  check_values(x, {12, 14, 16, 22, 24, 26});
  CHECK(x.version() == 4);
  x.transpose(0, 1).narrow(0, 1, 1).zero_();  // column 1
  check_values(x, {12, 0, 16, 22, 0, 26});
  CHECK(x.version() == 5);
  // copy_ converts dtype
  Tensor d = zeros({3}, DType::Float64);
  d.copy_(Tensor::from_vector_i64({4, 5, 6}, {3}));
  check_values(d, {4, 5, 6});
  // add_ from a float64 tensor into a float32 one
  Tensor f = ones({2});
  f.add_(Tensor::from_vector({0.5, 1.5}, {2}, DType::Float64));
  check_values(f, {1.5, 2.5});
  // add_ through strides on both sides (a transposed view into a transposed source), and a long
  // contiguous one, which is split over the threads
  Tensor t = zeros({3, 2});
  t.transpose(0, 1).add_(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}).transpose(0, 1), 2);
  check_values(t, {2, 4, 6, 8, 10, 12});
  Tensor big = ones({100000});
  big.add_(arange(100000).to(DType::Float32), -1);
  CHECK(big.data<float>()[0] == 1);
  CHECK(big.data<float>()[99999] == -99998);
  CHECK(sum(big).item() == doctest::Approx(100000 - 99999.0 * 100000 / 2));
  // a fresh tensor made from the same values has its own counter
  CHECK(x.clone().version() == 0);
}

TEST_CASE("in-place writes into a tensor that requires grad need NoGradGuard") {
  Tensor w = ones({3}).requires_grad_();
  const uint64_t v0 = w.version();
  CHECK_THROWS_MG(w.add_(ones({3})), "add_", "float32[3]", "NoGradGuard");
  CHECK_THROWS_MG(w.fill_(0), "fill_", "requires grad");
  CHECK_THROWS_MG(w.mul_(2), "mul_");
  CHECK_THROWS_MG(w.copy_(zeros({3})), "copy_");
  {
    NoGradGuard ng;
    w.add_(ones({3}), -0.5);  // an optimiser step
  }
  check_values(w, {0.5, 0.5, 0.5});
  CHECK(w.version() == v0 + 1);  // the refused writes changed nothing
}

// ---- error messages ----

TEST_CASE("errors name the op, the shapes and what would fit") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_MG(Tensor::from_vector({1, 2, 3}, {2, 2}), "from_vector", "3 values", "[2, 2]", "4 elements");
  CHECK_THROWS_MG(Tensor::empty({2, -1}), "empty", "[2, -1]");
  CHECK_THROWS_MG(x.view({4, 2}), "view", "[4, 2]", "[2, 3]", "6 elements");
  CHECK_THROWS_MG(x.reshape({-1, -1}), "reshape", "only one dimension can be -1");
  CHECK_THROWS_MG(x.reshape({4, -1}), "reshape", "[4, -1]", "[2, 3]");
  CHECK_THROWS_MG(x.permute({0}), "permute", "[0]", "[2, 3]");
  CHECK_THROWS_MG(x.permute({1, 1}), "permute", "repeated", "[1, 1]");
  CHECK_THROWS_MG(x.transpose(0, 2), "transpose", "dimension 2", "2 dims", "[-2, 1]");
  CHECK_THROWS_MG(x.size(-3), "size", "dimension -3", "2 dims");
  CHECK_THROWS_MG(x.squeeze(5), "squeeze", "dimension 5");
  CHECK_THROWS_MG(x.unsqueeze(4), "unsqueeze", "dimension 4", "3 dims");
  CHECK_THROWS_MG(x.flatten(1, 0), "flatten", "start dim 1", "end dim 0");
  CHECK_THROWS_MG(x.expand({4, 3}), "expand", "float32[2, 3]", "[4, 3]", "size-1");
  CHECK_THROWS_MG(x.expand({3}), "expand", "float32[2, 3]", "[3]", "fewer dims");
  CHECK_THROWS_MG(x.narrow(1, 2, 2), "narrow", "[2, 4)", "dim 1 of size 3", "[2, 3]");
  CHECK_THROWS_MG(x.narrow(2, 0, 1), "narrow", "dimension 2");
  CHECK_THROWS_MG(x.select(0, 2), "select", "index 2", "dim 0 of size 2");
  CHECK_THROWS_MG(x.select(0, -3), "select", "index -3");
  CHECK_THROWS_MG(x.split(0, 1), "split", "split_size", "0");
  CHECK_THROWS_MG(x.chunk(0, 1), "chunk", "positive");
  CHECK_THROWS_MG(x.at({2, 0}), "at", "[2, 0]", "[2, 3]");
  CHECK_THROWS_MG(x.at({0}), "at", "[0]", "[2, 3]");
  CHECK_THROWS_MG(x.item(), "item", "[2, 3]");
  CHECK_THROWS_MG(x.data<double>(), "Tensor::data", "float32", "float64");
  CHECK_THROWS_MG(x.copy_(zeros({3, 3})), "copy_", "[3, 3]", "[2, 3]", "cannot be broadcast");
  CHECK_THROWS_MG(x.add_(zeros({2, 1, 3})), "add_", "[2, 1, 3]", "[2, 3]");
  CHECK_THROWS_MG(Tensor().shape(), "undefined tensor");
  CHECK_THROWS_MG(zeros({2}, DType::Int64).requires_grad_(), "requires_grad_", "int64[2]");
  CHECK_THROWS_MG(arange(0.0, 1.0, 0.0), "arange", "step");
  Generator g(0);
  CHECK_THROWS_MG(trunc_normal({2}, 0, 1, g, 10, 20), "trunc_normal", "[10, 20]");
}
