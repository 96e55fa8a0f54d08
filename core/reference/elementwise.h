// Reference elementwise loops: every element visited in row-major order, one at a time, its place
// in memory computed from its index and the strides (offset_of). No threads, no SIMD, no special
// cases for contiguous or broadcast operands: the loops core/kernels/elementwise.h makes fast.
#pragma once
#include <cmath>
#include <cstdint>

#include "maxgrad/core/tensor.h"

namespace mg::reference {

// Where the i-th element (row-major order) of a tensor with this shape and these strides is,
// relative to its data(): the sum over dims of (index along the dim) * stride.
inline int64_t offset_of(int64_t i, const Shape& shape, const Shape& strides) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    off += (i % shape[d]) * strides[d];
    i /= shape[d];
  }
  return off;
}

// out[i] = f(a[i]); out is a new contiguous tensor of a's shape.
template <typename T, typename F> Tensor map1(const Tensor& a, F f) {
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  T* o = out.data<T>();
  const T* p = a.data<T>();
  for (int64_t i = 0; i < a.numel(); ++i) o[i] = f(p[offset_of(i, a.shape(), a.strides())]);
  return out;
}

// out[i] = f(a[i], b[i]); a and b have the same shape (a broadcast operand has stride 0).
template <typename T, typename F> Tensor map2(const Tensor& a, const Tensor& b, F f) {
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  T* o = out.data<T>();
  const T *p = a.data<T>(), *q = b.data<T>();
  for (int64_t i = 0; i < a.numel(); ++i)
    o[i] = f(p[offset_of(i, a.shape(), a.strides())], q[offset_of(i, b.shape(), b.strides())]);
  return out;
}

// out[i] = f(a[i], b[i], c[i]) for three tensors of one shape.
template <typename T, typename F> Tensor map3(const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  T* o = out.data<T>();
  const T *p = a.data<T>(), *q = b.data<T>(), *r = c.data<T>();
  for (int64_t i = 0; i < a.numel(); ++i)
    o[i] = f(p[offset_of(i, a.shape(), a.strides())], q[offset_of(i, b.shape(), b.strides())],
             r[offset_of(i, c.shape(), c.strides())]);
  return out;
}

// The functions the fast path approximates, from the C library: exp and erf, and from them GELU
// (exact: gelu(x) = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2) and its derivative
// Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi). Handed to the formulas of core/ops/unary.cpp
// as `math` on this path (kernels::FastMath on the fast one).
struct Math {
  template <typename T> static T exp(T x) { return std::exp(x); }
  template <typename T> static T erf(T x) { return std::erf(x); }
  template <typename T> static T gelu(T x) { return x * T(0.5) * (1 + std::erf(x * T(M_SQRT1_2))); }
  // y (gelu's output) is not used: the derivative is computed from x alone
  template <typename T> static T gelu_grad(T x, T /*y*/) {
    const T cdf = T(0.5) * (1 + std::erf(x * T(M_SQRT1_2)));
    const T pdf = std::exp(T(-0.5) * x * x) * T(0.5 * M_2_SQRTPI * M_SQRT1_2);
    return cdf + x * pdf;
  }
};

// dst[i] = src[i] with src broadcast to dst's shape (stride 0) and converted to dst's type.
void copy(const Tensor& dst, const Tensor& src);
// dst[i] = v
void fill(const Tensor& dst, double v);
// dst[i] += alpha * src[i], src of dst's shape and type (broadcast by stride 0)
void add_(const Tensor& dst, const Tensor& src, double alpha);
// dst[i] *= v
void mul_(const Tensor& dst, double v);

}  // namespace mg::reference
