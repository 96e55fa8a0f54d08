// Shared by the core tests: expecting an mg::Error with a given message, comparing tensors, and
// making inputs with unusual strides (minitorch's idea: every op is also tried on non-contiguous views).
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/nn/serialize/serialize.h"

namespace mg::testing {

// The message of the mg::Error that f throws, or "" when it throws nothing.
template <typename F> std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Values of a and b (any strides, any floating dtype) agree within atol + rtol * |b|, same shape.
inline void check_close(const Tensor& a, const Tensor& b, double rtol = 1e-6, double atol = 1e-6) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), a.info(), " vs ", b.info());
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  for (size_t i = 0; i < va.size(); ++i)
    if (!(std::fabs(va[i] - vb[i]) <= atol + rtol * std::fabs(vb[i]))) {
      FAIL_CHECK("element ", i, " of ", a.info(), ": ", va[i], " vs ", vb[i]);
      return;
    }
}

inline void check_values(const Tensor& a, const std::vector<double>& expected, double rtol = 1e-6, double atol = 1e-6) {
  REQUIRE(static_cast<size_t>(a.numel()) == expected.size());
  check_close(a, Tensor::from_vector(expected, a.shape(), DType::Float64), rtol, atol);
}

// Every byte of a's elements equals b's (same dtype and shape): the determinism check.
inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  const size_t n = static_cast<size_t>(ca.numel()) * itemsize(ca.dtype());
  const char* pa = static_cast<const char*>(ca.impl().storage->data()) + ca.offset() * itemsize(ca.dtype());
  const char* pb = static_cast<const char*>(cb.impl().storage->data()) + cb.offset() * itemsize(cb.dtype());
  return std::memcmp(pa, pb, n) == 0;
}

// Tensors of a given logical shape whose memory layout is not the plain row-major one. Each is a
// leaf (a view made without grad), so gradcheck can perturb it and read its .grad.
struct Inputs {
  Generator gen;
  explicit Inputs(uint64_t seed = 0) : gen(seed) {}

  Tensor randn(const Shape& s, DType dt = DType::Float64) { return mg::randn(s, gen, dt); }
  // Uniform in [lo, hi): for functions defined on part of the line (log, sqrt, pow).
  Tensor uniform(const Shape& s, double lo, double hi, DType dt = DType::Float64) {
    return add(mul(mg::rand(s, gen, dt), hi - lo), lo);
  }
  // Same values layout reversed: dims stored last-to-first (strides increase along the shape).
  Tensor permuted(const Shape& s, DType dt = DType::Float64) {
    Shape rev(s.rbegin(), s.rend()), perm;
    for (int64_t d = static_cast<int64_t>(s.size()) - 1; d >= 0; --d) perm.push_back(d);
    return randn(rev, dt).permute(perm);
  }
  // Every stride doubled and a non-zero offset: a slice of every other element of a bigger tensor.
  Tensor strided(const Shape& s, DType dt = DType::Float64) {
    Shape big = s;
    big.push_back(2);
    big[0] += 1;
    return randn(big, dt).narrow(0, 1, s[0]).select(-1, 1);
  }
};

// A committed fixture of tests/golden/recipe/ (written by make_recipe.py there), by tensor name;
// MAXGRAD_SOURCE (set by CTest) is the clone's root.
inline std::map<std::string, Tensor> recipe_fixture(const std::string& file) {
  const char* src = std::getenv("MAXGRAD_SOURCE");
  std::map<std::string, Tensor> t;
  for (auto& [n, v] : serialize::load_tensors(std::string(src ? src : ".") + "/tests/golden/recipe/" + file)) t[n] = v;
  return t;
}

}  // namespace mg::testing

// CHECK_THROWS_MG(expr, "part", ...): expr throws mg::Error and its message contains every part
// (the op's name, the shapes involved, ...).
#define CHECK_THROWS_MG(EXPR, ...)                                                           \
  do {                                                                                       \
    const std::string mg_msg_ = ::mg::testing::error_message([&] { (void)(EXPR); });         \
    CHECK_MESSAGE(!mg_msg_.empty(), "expected mg::Error from: " #EXPR);                      \
    for (const char* mg_part_ : std::initializer_list<const char*>{__VA_ARGS__})             \
      CHECK_MESSAGE(mg_msg_.find(mg_part_) != std::string::npos, "'", std::string(mg_part_), \
                    "' missing from: ", mg_msg_);                                            \
  } while (0)
