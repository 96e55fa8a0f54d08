// Vectorisable float exp and erf. glibc's expf/erff are scalar calls the compiler cannot vectorise,
// and GELU's erf was the largest single cost of a MaxViT training step. These are branch-free
// polynomials (Cephes' expf; the rational erf used by Eigen and XLA), so loops over them compile
// to SIMD. Accuracy, measured over [-10, 10] against glibc (tests/test_fast_math.cpp):
// exp relative error < 1e-7, erf absolute error < 5e-7. float64 keeps std::exp / std::erf, so
// float64 runs (gradcheck, golden cases) use the exact library functions.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace mg::kernels {

// Plain comparisons and the 1.5 * 2^23 rounding trick, not fmin/fmax/nearbyint: those are library
// calls unless -ffast-math, and a call in the loop stops the compiler from vectorising it.
inline float clamp_branchless(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }
inline float round_nearest(float x) { return (x + 12582912.0f) - 12582912.0f; }  // nearest, |x| < 2^22

inline float fast_exp(float x) {
  x = clamp_branchless(x, -87.3f, 88.3f);
  const float n = round_nearest(x * 1.44269504088896341f);  // x = n ln2 + r, |r| <= ln2/2
  float r = x - n * 0.693359375f;                           // ln2 in two parts keeps r exact
  r = r - n * -2.12194440e-4f;
  const float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  int32_t bits;  // multiply by 2^n through the exponent field
  std::memcpy(&bits, &y, 4);
  bits += static_cast<int32_t>(n) * (1 << 23);
  std::memcpy(&y, &bits, 4);
  return y;
}

inline float fast_erf(float x) {
  x = clamp_branchless(x, -4.0f, 4.0f);  // erf(4) rounds to 1 in float
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return x * p / q;
}

// vec_exp and vec_erf ("vectorisable"): the fast version for float, the library one for double.
inline float vec_exp(float x) { return fast_exp(x); }
inline double vec_exp(double x) { return std::exp(x); }
inline float vec_erf(float x) { return fast_erf(x); }
inline double vec_erf(double x) { return std::erf(x); }

// GELU, exact (not the tanh approximation): gelu(x) = x Phi(x) = x/2 (1 + erf(x / sqrt 2)), and
// its derivative Phi(x) + x phi(x) with phi(x) = e^(-x^2/2) / sqrt(2 pi). Used by the gelu op and
// by batch_norm_gelu, so both compute the same numbers.
template <typename T> inline T vec_gelu(T x) { return x * T(0.5) * (1 + vec_erf(x * T(M_SQRT1_2))); }
template <typename T> inline T vec_gelu_grad(T x) {
  const T cdf = T(0.5) * (1 + vec_erf(x * T(M_SQRT1_2)));
  const T pdf = vec_exp(T(-0.5) * x * x) * T(0.5 * M_2_SQRTPI * M_SQRT1_2);
  return cdf + x * pdf;
}

// The same derivative when the forward's output y = vec_gelu(x) is at hand: Phi(x) is y / x, so the erf
// is not computed again, only phi's exp. Near 0, where y / x is 0 / 0, Phi(x) = 1/2 + x phi(0) (the
// next term, x^3 phi(0) / 6, is below 7e-11 for |x| < 1e-3). y / x is the forward's Phi within 3
// float roundings. The gelu op's backward reads y anyway (core/ops/unary.cpp); batch_norm_gelu's does
// not keep it, and reading it from memory there would cost more than the erf.
// Float only: float64 keeps the library erf.
inline float vec_gelu_grad_from_output(float x, float y) {
  const float phi0 = static_cast<float>(0.5 * M_2_SQRTPI * M_SQRT1_2);
  const float cdf = (x > 1e-3f || x < -1e-3f) ? y / x : 0.5f + x * phi0;
  return cdf + x * (vec_exp(-0.5f * x * x) * phi0);
}
inline double vec_gelu_grad_from_output(double x, double) { return vec_gelu_grad(x); }

}  // namespace mg::kernels
