#include "maxgrad/core/kernels/depthwise_3x3.h"

#include "maxgrad/core/kernels/simd.h"

namespace mg::kernels {

namespace {

// f(q0, src) for every vector of outputs, q0 the first output's index in (ho, wo) and src[i * 3 + j]
// the input under tap (i, j) for each of its lanes (0 in the padding). Stride 2.
template <typename T, typename F> void for_output_vectors_s2(const T* x, const ConvGeom& g, F f) {
  using V = Vec<T>;
  constexpr int64_t N = kVecLanes<T>;
  const int64_t wo = g.wo;
  V src[9];
  if (wo % N == 0) {  // whole vectors in a row
    for (int64_t oh = 0; oh < g.ho; ++oh)
      for (int64_t c0 = 0; c0 < wo; c0 += N) {
        for (int64_t i = 0; i < 3; ++i) {
          const int64_t r = 2 * oh - 1 + i;
          if (r < 0) {  // the padding row above
            src[i * 3] = src[i * 3 + 1] = src[i * 3 + 2] = V{};
            continue;
          }
          const T* row = x + r * g.w;
          V even, odd;
          vdeinterleave(row + 2 * c0, even, odd);
          const V before = c0 ? V{} + row[2 * c0 - 1] : V{};  // the padding column for c0 = 0
          src[i * 3] = vshift_up<1>(before, odd), src[i * 3 + 1] = even, src[i * 3 + 2] = odd;
        }
        f(oh * wo + c0, src);
      }
    return;
  }
  with_short_width<T>(wo, [&](auto width) {  // N / W output rows per vector
    constexpr int64_t W = decltype(width)::value;
    const VMask<T> starts = vmask_where<T>([](int64_t l) { return l % W == 0; });
    V last_odd{}, last_b[3] = {};  // carried from the vector before: the odd values, the odd rows
    for (int64_t q0 = 0; q0 < g.ho * W; q0 += N) {
      V col[3][2];  // columns 2ow-1, 2ow, 2ow+1 of the 2N / W input rows, in (h, wo) layout: two vectors
      for (int64_t k = 0; k < 2; ++k) {
        V even, odd;
        vdeinterleave(x + 4 * q0 + 2 * N * k, even, odd);
        col[0][k] = vzero_where<T>(vshift_up<1>(last_odd, odd), starts), col[1][k] = even, col[2][k] = odd;
        last_odd = odd;
      }
      for (int64_t j = 0; j < 3; ++j) {
        V a, b;  // input rows 2oh and 2oh + 1; row 2oh - 1 is the odd row before (0 above the first)
        vsplit_blocks<W>(col[j][0], col[j][1], a, b);
        src[j] = vshift_up<W>(last_b[j], b), src[3 + j] = a, src[6 + j] = b;
        last_b[j] = b;
      }
      f(q0, src);
    }
  });
}

// The same at stride 1, where the output's layout is the input's: tap (i, j) of output q is input
// q + (i - 1) w + j - 1, the vector shifted across the ones before and after it; the columns a shift
// carries over a row's edge are zeroed, and past the plane's first or last row the neighbours are 0.
template <typename T, typename F> void for_output_vectors_s1(const T* x, const ConvGeom& g, F f) {
  using V = Vec<T>;
  constexpr int64_t N = kVecLanes<T>;
  const int64_t w = g.w;
  V src[9];
  if (w % N == 0) {  // whole vectors in a row: neighbours in the row from single values
    for (int64_t oh = 0; oh < g.ho; ++oh)
      for (int64_t c0 = 0; c0 < w; c0 += N) {
        for (int64_t i = 0; i < 3; ++i) {
          const int64_t r = oh - 1 + i;
          if (r < 0 || r >= g.h) {
            src[i * 3] = src[i * 3 + 1] = src[i * 3 + 2] = V{};
            continue;
          }
          const T* row = x + r * w + c0;  // the columns beside a vector: unaligned loads inside the row
          const V v = vload(row);
          src[i * 3] = c0 ? vload(row - 1) : vshift_up<1>(V{}, v);
          src[i * 3 + 1] = v;
          src[i * 3 + 2] = c0 + N < w ? vload(row + 1) : vshift_down<1>(v, V{});
        }
        f(oh * w + c0, src);
      }
    return;
  }
  with_short_width<T>(w, [&](auto width) {  // N / W rows per vector
    constexpr int64_t W = decltype(width)::value;
    const VMask<T> first = vmask_where<T>([](int64_t l) { return l % W == 0; });
    const VMask<T> last = vmask_where<T>([](int64_t l) { return l % W == W - 1; });
    const int64_t count = g.h * W;
    V prev{}, v = vload(x);
    for (int64_t q0 = 0; q0 < count; q0 += N) {
      const V next = q0 + N < count ? vload(x + q0 + N) : V{};
      src[0] = vzero_where<T>(vshift_up<W + 1>(prev, v), first);
      src[1] = vshift_up<W>(prev, v);
      src[2] = vzero_where<T>(vshift_up<W - 1>(prev, v), last);
      src[3] = vzero_where<T>(vshift_up<1>(prev, v), first);
      src[4] = v;
      src[5] = vzero_where<T>(vshift_down<1>(v, next), last);
      src[6] = vzero_where<T>(vshift_down<W - 1>(v, next), first);
      src[7] = vshift_down<W>(v, next);
      src[8] = vzero_where<T>(vshift_down<W + 1>(v, next), last);
      f(q0, src);
      prev = v, v = next;
    }
  });
}

template <typename T, typename F> void for_output_vectors(const T* x, const ConvGeom& g, F f) {
  if (g.stride == 1) return for_output_vectors_s1(x, g, f);
  for_output_vectors_s2(x, g, f);
}

}  // namespace

template <typename T> bool dw3x3_fits(const ConvGeom& g) {
  constexpr int64_t N = kVecLanes<T>;
  const bool geometry = g.kh == 3 && g.kw == 3 && g.pad == 1 &&
                        ((g.stride == 1 && g.ho == g.h && g.wo == g.w) ||
                         (g.stride == 2 && g.h % 2 == 0 && g.w % 2 == 0 && g.ho * 2 == g.h && g.wo * 2 == g.w));
  return geometry && g.wo > 0 && (g.wo % N == 0 || N % g.wo == 0) && g.ho * g.wo % N == 0;
}

template <typename T> void dw3x3_forward(const T* x, const T* w9, T bias, const ConvGeom& g, T* y) {
  using V = Vec<T>;
  for_output_vectors(x, g, [&](int64_t q0, const V* src) {
    V acc = bias - V{};  // bias in every lane (x - 0 is x, -0 included; 0 + -0 would be +0)
    for (int64_t t = 0; t < 9; ++t) acc += w9[t] * src[t];
    vstore(y + q0, acc);
  });
}

template <typename T> void dw3x3_weight_lanes(const T* gy, const T* x, const ConvGeom& g, T* const* acc) {
  using V = Vec<T>;
  V sum[9] = {};
  for_output_vectors(x, g, [&](int64_t q0, const V* src) {
    const V d = vload(gy + q0);
    for (int64_t t = 0; t < 9; ++t) sum[t] += d * src[t];
  });
  for (int64_t t = 0; t < 9; ++t) vstore(acc[t], vload(acc[t]) + sum[t]);
}

// Stride 2: x (2r + a, 2c + b) is read by the taps (i, j) with i - 1 = 2 di + a, j - 1 = 2 dj + b, from output
// (r - di, c - dj): the even-even inputs by tap (1, 1) of their own output; the even-odd by (1, 0) of
// the output to the right and (1, 2) of their own; the odd-even by (0, 1) of the output below and
// (2, 1); the odd-odd by (0, 0) below right, (0, 2) below, (2, 0) right, (2, 2) their own.
template <typename T> void dw3x3_backward_input(const T* gy, const T* w9, const ConvGeom& g, T* gx) {
  using V = Vec<T>;
  constexpr int64_t N = kVecLanes<T>;
  if (g.stride == 1) {  // the convolution of gy with the kernel turned round: tap t of x reads gy under tap 8 - t
    for_output_vectors_s1(gy, g, [&](int64_t q0, const V* src) {
      V acc{};
      for (int64_t t = 0; t < 9; ++t) acc += w9[t] * src[8 - t];
      vstore(gx + q0, acc);
    });
    return;
  }
  const int64_t wo = g.wo, count = g.ho * wo;
  // the four phases of x from gy and its neighbours right, below and below right (0 past the edges)
  auto phases = [&](V d, V right, V below, V below_right, V& ee, V& eo, V& oe, V& oo) {
    ee = V{} + w9[4] * d;
    eo = (V{} + w9[3] * right) + w9[5] * d;
    oe = (V{} + w9[1] * below) + w9[7] * d;
    oo = (((V{} + w9[0] * below_right) + w9[2] * below) + w9[6] * right) + w9[8] * d;
  };
  if (wo % N == 0) {
    const VMask<T> top = vmask_where<T>([](int64_t l) { return l == N - 1; });
    for (int64_t oh = 0; oh < g.ho; ++oh)
      for (int64_t c0 = 0; c0 < wo; c0 += N) {
        const T* d = gy + oh * wo + c0;
        const bool last_col = c0 + N == wo, last_row = oh + 1 == g.ho;
        const V v = vload(d), next = last_col ? V{} : vload(d + N);
        const V below = last_row ? V{} : vload(d + wo), below_next = last_row || last_col ? V{} : vload(d + wo + N);
        V right = vshift_down<1>(v, next), below_right = vshift_down<1>(below, below_next);
        if (last_col) right = vzero_where<T>(right, top), below_right = vzero_where<T>(below_right, top);
        V ee, eo, oe, oo;
        phases(v, right, below, below_right, ee, eo, oe, oo);
        vinterleave(gx + 2 * oh * g.w + 2 * c0, ee, eo);
        vinterleave(gx + (2 * oh + 1) * g.w + 2 * c0, oe, oo);
      }
    return;
  }
  with_short_width<T>(wo, [&](auto width) {
    constexpr int64_t W = decltype(width)::value;
    const VMask<T> ends = vmask_where<T>([](int64_t l) { return l % W == W - 1; });
    for (int64_t q0 = 0; q0 < count; q0 += N) {
      const V v = vload(gy + q0), next = q0 + N < count ? vload(gy + q0 + N) : V{};
      const V right = vzero_where<T>(vshift_down<1>(v, next), ends);
      const V below = vshift_down<W>(v, next), below_right = vzero_where<T>(vshift_down<W + 1>(v, next), ends);
      V ee, eo, oe, oo;
      phases(v, right, below, below_right, ee, eo, oe, oo);
      V even_rows[2], odd_rows[2];  // rows 2r and 2r + 1 of gx for the N / W rows r here, 2W values each
      vjoin_blocks<1>(ee, eo, even_rows[0], even_rows[1]);
      vjoin_blocks<1>(oe, oo, odd_rows[0], odd_rows[1]);
      for (int64_t k = 0; k < 2; ++k) {
        V out0, out1;
        vjoin_blocks<2 * W>(even_rows[k], odd_rows[k], out0, out1);
        vstore(gx + 4 * q0 + 2 * N * k, out0);
        vstore(gx + 4 * q0 + 2 * N * k + N, out1);
      }
    }
  });
}

#define MG_INSTANTIATE(T)                                                         \
  template bool dw3x3_fits<T>(const ConvGeom&);                                   \
  template void dw3x3_forward<T>(const T*, const T*, T, const ConvGeom&, T*);     \
  template void dw3x3_backward_input<T>(const T*, const T*, const ConvGeom&, T*); \
  template void dw3x3_weight_lanes<T>(const T*, const T*, const ConvGeom&, T* const*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
