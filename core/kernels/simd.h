// One SIMD register of float or double (or of their bit patterns) as a GCC/Clang vector extension:
// 64 bytes with AVX-512, 32 with AVX, 16 otherwise (SSE2, the x86-64 baseline), so that `a * b + c` on
// it is one multiply-add instruction. Kernels that hold a block of values in registers use it instead
// of a local array: GCC 12 split such arrays into ymm, xmm and scalar pieces and ran several times
// slower (the depthwise taps, the attention's small products). It was 64 bytes on every target at
// first; without AVX-512 GCC lowered such a vector piece by piece, through general registers and the
// stack, and an AVX2 build ran the attention 3x and the depthwise convolutions 2x slower than it
// would with its own width (docs/performance.md, the sixth round). The kernels are written for any
// number of lanes, kVecLanes.
#pragma once
#include <cstdint>
#include <cstring>
#include <utility>

namespace mg::kernels {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

template <typename T> struct VecOf;
template <> struct VecOf<float> { typedef float type __attribute__((vector_size(kVecBytes))); };
template <> struct VecOf<double> { typedef double type __attribute__((vector_size(kVecBytes))); };
template <> struct VecOf<uint32_t> {  // bit masks of the same width as float and double
  typedef uint32_t type __attribute__((vector_size(kVecBytes)));
};
template <> struct VecOf<uint64_t> { typedef uint64_t type __attribute__((vector_size(kVecBytes))); };
template <typename T> using Vec = typename VecOf<T>::type;
template <typename T> constexpr int64_t kVecLanes = sizeof(Vec<T>) / sizeof(T);

// unaligned load and store (memcpy: no alignment or aliasing assumptions; compiled to one move)
template <typename T> inline Vec<T> vload(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T> inline void vstore(T* p, Vec<T> v) { std::memcpy(p, &v, sizeof v); }

// even, odd <- the even- and odd-indexed ones of the 2 * lanes values at p (a deinterleave)
template <typename T, size_t... I>
inline void vdeinterleave_(const T* p, Vec<T>& even, Vec<T>& odd, std::index_sequence<I...>) {
  const Vec<T> a = vload(p), b = vload(p + kVecLanes<T>);
  even = __builtin_shufflevector(a, b, (2 * I)...);
  odd = __builtin_shufflevector(a, b, (2 * I + 1)...);
}
template <typename T> inline void vdeinterleave(const T* p, Vec<T>& even, Vec<T>& odd) {
  vdeinterleave_(p, even, odd, std::make_index_sequence<kVecLanes<T>>{});
}
// p[0 .. 2 * lanes) <- even[0], odd[0], even[1], odd[1], ... (the inverse)
template <typename T, size_t... I> inline void vinterleave_(T* p, Vec<T> even, Vec<T> odd, std::index_sequence<I...>) {
  constexpr size_t L = sizeof...(I);
  // output i takes even[i / 2] or odd[i / 2] (index L + i / 2 of the pair), for the first and second half
  vstore(p, __builtin_shufflevector(even, odd, ((I % 2) * L + I / 2)...));
  vstore(p + L, __builtin_shufflevector(even, odd, ((I % 2) * L + (L + I) / 2)...));
}
template <typename T> inline void vinterleave(T* p, Vec<T> even, Vec<T> odd) {
  vinterleave_(p, even, odd, std::make_index_sequence<kVecLanes<T>>{});
}

// Rows i and i + S of a block: the top-right S x S sub-blocks of every 2S x 2S block swapped with the
// bottom-left ones. Done for S = L/2, ..., 2, 1 it transposes the whole L x L block.
template <int64_t S, typename V, size_t... I> inline void vswap_blocks(V& a, V& b, std::index_sequence<I...>) {
  constexpr int64_t N = sizeof...(I);
  const V lo = __builtin_shufflevector(a, b, ((I & S) ? N + I - S : I)...);
  const V hi = __builtin_shufflevector(a, b, ((I & S) ? N + I : I + S)...);
  a = lo, b = hi;
}
template <int64_t S, typename T> inline void vtranspose_stage(Vec<T>* r) {
  for (int64_t i = 0; i < kVecLanes<T>; ++i)
    if (!(i & S)) vswap_blocks<S>(r[i], r[i + S], std::make_index_sequence<kVecLanes<T>>{});
  if constexpr (S > 1) vtranspose_stage<S / 2, T>(r);
}
// r[0 .. lanes): the rows of a lanes x lanes block, replaced by its columns (log2(lanes) stages of
// lanes two-register shuffles: 4 of 16 for float with AVX-512)
template <typename T> inline void vtranspose(Vec<T>* r) { vtranspose_stage<kVecLanes<T> / 2, T>(r); }

}  // namespace mg::kernels
