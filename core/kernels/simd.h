// One SIMD register of float or double (or of their bit patterns) as a GCC/Clang vector extension:
// 64 bytes with AVX-512, 32 with AVX, 16 otherwise (SSE2, the x86-64 baseline), so that `a * b + c` on
// it is one multiply-add instruction. Kernels that hold a block of values in registers use it instead
// of a local array: GCC 12 split such arrays into ymm, xmm and scalar pieces and ran several times
// slower (the depthwise taps, the attention's small products). It was 64 bytes on every target at
// first; without AVX-512 GCC lowered such a vector piece by piece, through general registers and the
// stack, several times slower than with its own width. So the width is the target's register, and
// the kernels are written for any number of lanes, kVecLanes.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>
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
// kVecLanes of the kernels loaded at run time. In a portable build the dynamic loader may load
// maxgrad_core compiled for a wider vector than the code calling it (CMakeLists.txt, "instruction
// sets"), so code outside core/ that sizes a kernel's buffer by lanes asks the library, never
// kVecLanes (core/runtime/isa.cpp).
template <typename T> int64_t loaded_vec_lanes();

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

// ---- lane masks, shifts across two vectors, and (de)interleaving in blocks of W lanes: the
// stride-2 windows of avg_pool2d and the depthwise convolution on rows of any width ----

template <typename T> using VMask = Vec<std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>;

// the lanes l for which pred(l) holds, as a mask for vzero_where
template <typename T, typename P> inline VMask<T> vmask_where(P pred) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U bits[kVecLanes<T>];
  for (int64_t l = 0; l < kVecLanes<T>; ++l) bits[l] = pred(l) ? ~U(0) : U(0);
  VMask<T> m;
  std::memcpy(&m, bits, sizeof m);
  return m;
}
template <typename T> inline Vec<T> vzero_where(Vec<T> v, VMask<T> m) { return (Vec<T>)((VMask<T>)v & ~m); }

template <int64_t W, typename V, size_t... I> inline V vshift_up_(V prev, V v, std::index_sequence<I...>) {
  constexpr int N = sizeof...(I);
  return __builtin_shufflevector(prev, v, (static_cast<int>(I) < W ? N - W + static_cast<int>(I) : N + I - W)...);
}
// v's lanes moved up by W, prev's top W lanes coming in below: lane l is v[l - W], or prev[N - W + l]
template <int64_t W, typename V> inline V vshift_up(V prev, V v) {
  return vshift_up_<W>(prev, v, std::make_index_sequence<sizeof(V) / sizeof(v[0])>{});
}
template <int64_t W, typename V, size_t... I> inline V vshift_down_(V v, V next, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, next, static_cast<int>(I + W)...);
}
// v's lanes moved down by W, next's bottom W lanes coming in above: lane l is v[l + W], or next[l + W - N]
template <int64_t W, typename V> inline V vshift_down(V v, V next) {
  return vshift_down_<W>(v, next, std::make_index_sequence<sizeof(V) / sizeof(v[0])>{});
}

template <int64_t W, typename V, size_t... I>
inline void vsplit_blocks_(V h0, V h1, V& a, V& b, std::index_sequence<I...>) {
  a = __builtin_shufflevector(h0, h1, static_cast<int>(I / W * 2 * W + I % W)...);
  b = __builtin_shufflevector(h0, h1, static_cast<int>(I / W * 2 * W + W + I % W)...);
}
template <int64_t W, typename V, size_t... I>
inline void vjoin_blocks_(V a, V b, V& h0, V& h1, std::index_sequence<I...>) {
  constexpr int64_t N = sizeof...(I);  // position P of the 2N comes from block P / W: a's if even, b's if odd
  h0 = __builtin_shufflevector(a, b, static_cast<int>((I / W) % 2 * N + I / W / 2 * W + I % W)...);
  h1 = __builtin_shufflevector(a, b, static_cast<int>(((N + I) / W) % 2 * N + (N + I) / W / 2 * W + I % W)...);
}
// The 2N values of (h0, h1) as blocks of W lanes (W divides N): the even blocks into a, the odd ones
// into b (rows 0, 2, 4, ... and 1, 3, 5, ... of a matrix W wide); vjoin_blocks is the inverse.
template <int64_t W, typename V> inline void vsplit_blocks(V h0, V h1, V& a, V& b) {
  vsplit_blocks_<W>(h0, h1, a, b, std::make_index_sequence<sizeof(V) / sizeof(h0[0])>{});
}
template <int64_t W, typename V> inline void vjoin_blocks(V a, V b, V& h0, V& h1) {
  vjoin_blocks_<W>(a, b, h0, h1, std::make_index_sequence<sizeof(V) / sizeof(a[0])>{});
}

// f(std::integral_constant<int64_t, W>) for a row width w that is a power of two below the lanes of
// T (rows shorter than a vector); only the widths below the lanes are instantiated. Nothing otherwise.
template <typename T, typename F> inline void with_short_width(int64_t w, F f) {
  auto run = [&](auto c) {
    if constexpr (decltype(c)::value < kVecLanes<T>) f(c);
  };
  switch (w) {
    case 1: return run(std::integral_constant<int64_t, 1>{});
    case 2: return run(std::integral_constant<int64_t, 2>{});
    case 4: return run(std::integral_constant<int64_t, 4>{});
    case 8: return run(std::integral_constant<int64_t, 8>{});
  }
}

}  // namespace mg::kernels
