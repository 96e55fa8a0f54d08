// map1 / map2: out[i] = f(a[i]) or f(a[i], b[i]) over any strides, with a flat, vectorisable loop
// when every operand is contiguous (the common case) and the strided row walk otherwise. map3: the
// shape of most activation backwards. Each goes to the plain loops of core/reference/elementwise.h
// on the reference path.
#pragma once
#include "maxgrad/core/autograd.h"
#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/fast_math.h"
#include "maxgrad/core/kernels/loops.h"
#include "maxgrad/core/reference/elementwise.h"
#include "maxgrad/core/tensor.h"

namespace mg::kernels {

template <typename T, typename F> Tensor map1(const Tensor& a, F f) {
  if (use_reference_kernels()) return reference::map1<T>(a, f);
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  T* o = out.data<T>();
  const T* p = a.data<T>();
  if (a.is_contiguous()) {
    parallel_for(a.numel(), 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) o[i] = f(p[i]);
    });
    return out;
  }
  for_each_row<2>(a.shape(), {out.strides(), a.strides()},
                  [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                    for (int64_t i = 0; i < n; ++i) o[off[0] + i] = f(p[off[1] + i * st[1]]);
                  });
  return out;
}

// a and b must already be expanded (or equal) to `shape`.
template <typename T, typename F> Tensor map2(const Tensor& a, const Tensor& b, F f) {
  if (use_reference_kernels()) return reference::map2<T>(a, b, f);
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  T* o = out.data<T>();
  const T* p = a.data<T>();
  const T* q = b.data<T>();
  if (a.is_contiguous() && b.is_contiguous()) {
    parallel_for(a.numel(), 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) o[i] = f(p[i], q[i]);
    });
    return out;
  }
  for_each_row<3>(a.shape(), {out.strides(), a.strides(), b.strides()},
                  [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
                    if (st[1] == 1 && st[2] == 1) {
                      for (int64_t i = 0; i < n; ++i) o[off[0] + i] = f(p[off[1] + i], q[off[2] + i]);
                    } else if (st[1] == 1 && st[2] == 0) {  // row of a against one value of b (bias)
                      const T bv = q[off[2]];
                      for (int64_t i = 0; i < n; ++i) o[off[0] + i] = f(p[off[1] + i], bv);
                    } else if (st[1] == 0 && st[2] == 1) {  // one value of a against a row of b (a scale)
                      const T av = p[off[1]];
                      for (int64_t i = 0; i < n; ++i) o[off[0] + i] = f(av, q[off[2] + i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i) o[off[0] + i] = f(p[off[1] + i * st[1]], q[off[2] + i * st[2]]);
                    }
                  });
  return out;
}

// out[i] = f(a[i], b[i], c[i]) for three tensors of one shape (made contiguous): the shape of most
// activation backwards, f(x, y, grad). With reuse_c, out is c itself when c is contiguous and
// nothing else holds it (mg::sole_owner): c[i] is read once, just before out[i] is written.
template <typename T, typename F>
Tensor map3(const Tensor& a_, const Tensor& b_, const Tensor& c_, F f, bool reuse_c = false) {
  if (use_reference_kernels()) return reference::map3<T>(a_, b_, c_, f);
  const bool reuse = reuse_c && c_.is_contiguous() && sole_owner(c_);  // before `c` below holds it too
  Tensor a = a_.contiguous(), b = b_.contiguous(), c = c_.contiguous();
  Tensor out = reuse ? c : Tensor::empty(a.shape(), a.dtype());
  T* o = out.data<T>();
  const T *p = a.data<T>(), *q = b.data<T>(), *r = c.data<T>();
  parallel_for(a.numel(), 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) o[i] = f(p[i], q[i], r[i]);
  });
  return out;
}

// The fast path's exp, erf and GELU (core/kernels/fast_math.h): vectorisable polynomials for float,
// the library functions for double. Handed to the formulas of core/ops/unary.cpp as `math`
// (reference::Math, the library functions for both, on the reference path).
struct FastMath {
  template <typename T> static T exp(T x) { return vec_exp(x); }
  template <typename T> static T erf(T x) { return vec_erf(x); }
  template <typename T> static T gelu(T x) { return vec_gelu(x); }
  template <typename T> static T gelu_grad(T x, T y) { return vec_gelu_grad_from_output(x, y); }
};

// map1 and map3 for formulas written with a `math` argument: f(math, a[i]), f(math, a[i], b[i], c[i]).
template <typename T, typename F> Tensor map1_math(const Tensor& a, F f) {
  if (use_reference_kernels()) return map1<T>(a, [f](T v) { return f(reference::Math{}, v); });
  return map1<T>(a, [f](T v) { return f(FastMath{}, v); });
}
template <typename T, typename F>
Tensor map3_math(const Tensor& a, const Tensor& b, const Tensor& c, F f, bool reuse_c = false) {
  if (use_reference_kernels()) return map3<T>(a, b, c, [f](T x, T y, T z) { return f(reference::Math{}, x, y, z); });
  return map3<T>(
      a, b, c, [f](T x, T y, T z) { return f(FastMath{}, x, y, z); }, reuse_c);
}

}  // namespace mg::kernels
