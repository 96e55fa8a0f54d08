// One 64-byte SIMD vector of float or double (or of their bit patterns), as a GCC/Clang vector extension: the compiler
// maps it onto whatever registers the target has (one zmm with AVX-512, two ymm with AVX2), and `a * b + c` on it is a
// vector multiply-add. Kernels that hold a block of values in a register use it instead of a local array: GCC 12 split
// such arrays into ymm, xmm and scalar pieces and ran several times slower (the depthwise taps, the attention's small
// products).
#pragma once
#include <cstdint>
#include <cstring>
#include <utility>

namespace mg::kernels {

template <typename T> struct Vec64Of;
template <> struct Vec64Of<float> { typedef float type __attribute__((vector_size(64))); };
template <> struct Vec64Of<double> { typedef double type __attribute__((vector_size(64))); };
template <> struct Vec64Of<uint32_t> {  // bit masks of the same width as float and double
  typedef uint32_t type __attribute__((vector_size(64)));
};
template <> struct Vec64Of<uint64_t> { typedef uint64_t type __attribute__((vector_size(64))); };
template <typename T> using Vec64 = typename Vec64Of<T>::type;
template <typename T> constexpr int64_t kVecLanes = sizeof(Vec64<T>) / sizeof(T);

// unaligned load and store (memcpy: no alignment or aliasing assumptions; compiled to one move)
template <typename T> inline Vec64<T> vload(const T* p) {
  Vec64<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T> inline void vstore(T* p, Vec64<T> v) { std::memcpy(p, &v, sizeof v); }

// even, odd <- the even- and odd-indexed ones of the 2 * lanes values at p (a deinterleave)
inline void vdeinterleave(const float* p, Vec64<float>& even, Vec64<float>& odd) {
  const Vec64<float> a = vload(p), b = vload(p + 16);
  even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}
inline void vdeinterleave(const double* p, Vec64<double>& even, Vec64<double>& odd) {
  const Vec64<double> a = vload(p), b = vload(p + 8);
  even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
  odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
}
// p[0 .. 2 * lanes) <- even[0], odd[0], even[1], odd[1], ... (the inverse)
inline void vinterleave(float* p, Vec64<float> even, Vec64<float> odd) {
  vstore(p, __builtin_shufflevector(even, odd, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
  vstore(p + 16, __builtin_shufflevector(even, odd, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31));
}
inline void vinterleave(double* p, Vec64<double> even, Vec64<double> odd) {
  vstore(p, __builtin_shufflevector(even, odd, 0, 8, 1, 9, 2, 10, 3, 11));
  vstore(p + 8, __builtin_shufflevector(even, odd, 4, 12, 5, 13, 6, 14, 7, 15));
}

// Rows i and i + S of a block: the top-right S x S sub-blocks of every 2S x 2S block swapped with the
// bottom-left ones. Done for S = L/2, ..., 2, 1 it transposes the whole L x L block.
template <int64_t S, typename V, size_t... I> inline void vswap_blocks(V& a, V& b, std::index_sequence<I...>) {
  constexpr int64_t N = sizeof...(I);
  const V lo = __builtin_shufflevector(a, b, ((I & S) ? N + I - S : I)...);
  const V hi = __builtin_shufflevector(a, b, ((I & S) ? N + I : I + S)...);
  a = lo, b = hi;
}
template <int64_t S, typename T> inline void vtranspose_stage(Vec64<T>* r) {
  for (int64_t i = 0; i < kVecLanes<T>; ++i)
    if (!(i & S)) vswap_blocks<S>(r[i], r[i + S], std::make_index_sequence<kVecLanes<T>>{});
  if constexpr (S > 1) vtranspose_stage<S / 2, T>(r);
}
// r[0 .. lanes): the rows of a lanes x lanes block, replaced by its columns (4 stages of 16 two-register
// shuffles for float; 3 of 8 for double)
template <typename T> inline void vtranspose(Vec64<T>* r) { vtranspose_stage<kVecLanes<T> / 2, T>(r); }

}  // namespace mg::kernels
