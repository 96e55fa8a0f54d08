#include "maxgrad/core/kernels/conv_shifted.h"

#include <algorithm>
#include <array>
#include <utility>

#include "maxgrad/core/kernels/gemm_small_k.h"
#include "maxgrad/core/kernels/simd.h"
#include "maxgrad/core/runtime/parallel.h"

namespace mg::kernels {

namespace {
constexpr int64_t kL = kVecLanes<float>;  // np is a multiple of this (16 with AVX-512)
constexpr int64_t kColumnBlock = 128;     // split_columns: the stem's 1088 columns in 9 tasks
}  // namespace

ShiftedConv::ShiftedConv(int64_t c_, int64_t h_, int64_t w_, int64_t o_, int64_t kh_, int64_t kw_, int64_t pad_)
    : c(c_), h(h_), w(w_), o(o_), kh(kh_), kw(kw_), pad(pad_) {
  ho = h + 2 * pad - kh + 1;
  wo = w + 2 * pad - kw + 1;
  hp = h + 2 * pad;
  wp = w + 2 * pad;
  plane = hp * wp;
  np = (ho * wp + kL - 1) / kL * kL;
  offsets.resize(static_cast<size_t>(taps()));
  for (int64_t ci = 0; ci < c; ++ci)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) offsets[static_cast<size_t>((ci * kh + i) * kw + j)] = ci * plane + i * wp + j;
  padded_size = std::max(c * plane, offsets.back() + np);
}

ShiftedConv ShiftedConv::transposed() const { return ShiftedConv(o, ho, wo, c, kh, kw, kh - 1 - pad); }

bool shifted_conv_fits(const ConvGeom& g, int64_t out_channels, int64_t groups) {
  return g.stride == 1 && groups == 1 && g.kh == g.kw && g.kh > 1 && g.pad <= g.kh - 1 && g.pad <= g.kw - 1 &&
         g.c >= 1 && g.c <= 64 && out_channels >= 1 && out_channels <= 64 && g.ho >= 1 && g.wo >= 1;
}

void shifted_pad(const float* x, const ShiftedConv& s, float* xp) {
  for (int64_t ci = 0; ci < s.c; ++ci) {
    float* plane = xp + ci * s.plane;
    std::fill(plane, plane + s.pad * s.wp, 0.0f);  // top rows
    for (int64_t r = 0; r < s.h; ++r) {
      float* row = plane + (s.pad + r) * s.wp;
      std::fill(row, row + s.pad, 0.0f);
      std::copy_n(x + (ci * s.h + r) * s.w, s.w, row + s.pad);
      std::fill(row + s.pad + s.w, row + s.wp, 0.0f);
    }
    std::fill(plane + (s.pad + s.h) * s.wp, plane + s.plane, 0.0f);  // bottom rows
  }
  std::fill(xp + s.c * s.plane, xp + s.padded_size, 0.0f);
}

void shifted_spread(const float* gy, const ShiftedConv& s, float* gyp) {
  for (int64_t oc = 0; oc < s.o; ++oc) {
    float* dst = gyp + oc * s.np;
    for (int64_t r = 0; r < s.ho; ++r) {
      std::copy_n(gy + (oc * s.ho + r) * s.wo, s.wo, dst + r * s.wp);
      std::fill(dst + r * s.wp + s.wo, dst + (r + 1) * s.wp, 0.0f);
    }
    std::fill(dst + s.ho * s.wp, dst + s.np, 0.0f);
  }
}

void shifted_forward(const float* xp, const float* w, const float* bias, const ShiftedConv& s, float* scratch, float* y,
                     bool split_columns) {
  // scratch (o, np) = W (o, taps) @ the shifted rows of xp; columns [j0, j1) read xp from j0 on
  auto columns = [&](int64_t j0, int64_t j1) {
    gemm_small_k_rows(s.o, j1 - j0, s.taps(), w, s.taps(), xp + j0, s.offsets.data(), scratch + j0, s.np);
  };
  if (split_columns)  // whole vectors per task: every column is summed as in one call
    parallel_for(s.np / kL, kColumnBlock / kL, [&](int64_t v0, int64_t v1) { columns(v0 * kL, v1 * kL); });
  else
    columns(0, s.np);
  for (int64_t oc = 0; oc < s.o; ++oc) {  // keep the wo real columns of each row
    const float b = bias ? bias[oc] : 0.0f;
    for (int64_t r = 0; r < s.ho; ++r) {
      const float* src = scratch + oc * s.np + r * s.wp;
      float* dst = y + (oc * s.ho + r) * s.wo;
      for (int64_t q = 0; q < s.wo; ++q) dst[q] = src[q] + b;
    }
  }
}

namespace {

using V = Vec<float>;  // one register (simd.h): the weight gradient's accumulators

// The sum of a register's lanes as a tree of halves (lane i += lane i + h for h = lanes/2, ..., 1), the
// same order for every width; a loop over the lanes one by one took as long as the dot products
// themselves on the stem's 1088 positions.
template <int64_t H, size_t... I> inline V lanes_down(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, ((I + H) % kL)...);  // lane i <- lane i + H (the rest unused)
}
inline float lane_sum(V v) {
  constexpr auto lanes = std::make_index_sequence<kL>{};
  if constexpr (kL >= 16) v += lanes_down<8>(v, lanes);
  if constexpr (kL >= 8) v += lanes_down<4>(v, lanes);
  if constexpr (kL >= 4) v += lanes_down<2>(v, lanes);
  v += lanes_down<1>(v, lanes);
  return v[0];
}

// Keeps v in a register. Without it GCC folds the load of each shifted row into every multiply-add
// that uses it (the MO of them: memory operands, most of them split across two cache lines), and the
// loop, bound by loads, ran at half the forward's rate.
inline void in_register([[maybe_unused]] V& v) {
#if defined(__x86_64__) || defined(__i386__)
  asm("" : "+v"(v));
#endif
}

// gw[o, r] += sum_p gyp[o, p] * xp[off[r] + p] for MO out channels x MR taps: MO * MR register
// accumulators along p, MO + MR loads per MO * MR multiply-adds (each shifted row loaded once, kept in
// a register for its MO uses).
template <int64_t MO, int64_t MR>
void dots(const float* gyp, int64_t np, const float* xp, const int64_t* off, float* gw, int64_t ldw) {
  V acc[MO][MR];
#pragma GCC unroll 8
  for (int64_t i = 0; i < MO; ++i)
#pragma GCC unroll 8
    for (int64_t r = 0; r < MR; ++r) acc[i][r] = V{};
  for (int64_t p = 0; p < np; p += kL) {
    V g[MO];
#pragma GCC unroll 8
    for (int64_t i = 0; i < MO; ++i) g[i] = vload(gyp + i * np + p);
#pragma GCC unroll 8
    for (int64_t r = 0; r < MR; ++r) {
      V xv = vload(xp + off[r] + p);
      in_register(xv);
#pragma GCC unroll 8
      for (int64_t i = 0; i < MO; ++i) acc[i][r] += g[i] * xv;
    }
  }
  for (int64_t i = 0; i < MO; ++i)
    for (int64_t r = 0; r < MR; ++r) gw[i * ldw + r] += lane_sum(acc[i][r]);
}

// 4 x 6 accumulators + 6 + 1 loads fit AVX-512's 32 registers; 3 x 3 + 3 + 1 the 16 of AVX2 or SSE
// (and a 3x3 kernel's 9 taps per input channel are whole blocks of 3). With the 64-byte vectors simd.h
// once had everywhere, AVX2's block spilled to the stack: the largest kernel of an AVX2 step.
#if defined(__AVX512F__)
constexpr int64_t kMO = 4, kMR = 6;
#else
constexpr int64_t kMO = 3, kMR = 3;
#endif

using DotFn = void (*)(const float*, int64_t, const float*, const int64_t*, float*, int64_t);
template <int64_t MO, int64_t... MR> constexpr auto dot_row(std::integer_sequence<int64_t, MR...>) {
  return std::array<DotFn, sizeof...(MR)>{&dots<MO, MR + 1>...};
}
template <int64_t... MO> constexpr auto dot_table(std::integer_sequence<int64_t, MO...>) {
  return std::array<std::array<DotFn, kMR>, sizeof...(MO)>{
      dot_row<MO + 1>(std::make_integer_sequence<int64_t, kMR>{})...};
}
constexpr auto kDots = dot_table(std::make_integer_sequence<int64_t, kMO>{});  // [mo - 1][mr - 1]

}  // namespace

void shifted_weight_grad(const float* gyp, const float* xp, const ShiftedConv& s, float* gw) {
  const int64_t taps = s.taps();
  for (int64_t r0 = 0; r0 < taps; r0 += kMR) {  // a block of taps' rows stays in L1 while every o passes
    const int64_t mr = std::min(kMR, taps - r0);
    for (int64_t o0 = 0; o0 < s.o; o0 += kMO) {
      const int64_t mo = std::min(kMO, s.o - o0);
      kDots[static_cast<size_t>(mo - 1)][static_cast<size_t>(mr - 1)](gyp + o0 * s.np, s.np, xp, s.offsets.data() + r0,
                                                                      gw + o0 * taps + r0, taps);
    }
  }
}

void shifted_flip_weight(const float* w, int64_t o, int64_t c, int64_t kh, int64_t kw, float* wt) {
  for (int64_t oc = 0; oc < o; ++oc)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j)
          wt[((ci * o + oc) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)] = w[((oc * c + ci) * kh + i) * kw + j];
}

}  // namespace mg::kernels
