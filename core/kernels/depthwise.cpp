#include "core/kernels/depthwise.h"

#include <algorithm>
#include <cstring>

namespace mg::kernels {

namespace {

// The phase planes of one channel: s * s planes of hq rows of width wq. Output (oh, ow) of the
// extended output (ow < wq) sits at p = oh * wq + ow, and tap (i, j) reads phase (i % s, j % s) at
// p + (i / s) * wq + j / s. wq = wo + (kw - 1) / s keeps every real output's taps within its row;
// hq has one row more than the last output row's taps need, for the extended columns.
struct Phases {
  int64_t s, wq, hq, len, plane;
  explicit Phases(const ConvGeom& g)
      : s(g.stride),
        wq(g.wo + (g.kw - 1) / g.stride),
        hq(g.ho + (g.kh - 1) / g.stride + 1),
        len(g.ho * wq),
        plane(hq * wq) {}
  int64_t tap_offset(int64_t i, int64_t j) const { return ((i % s) * s + j % s) * plane + (i / s) * wq + j / s; }
};

// dst[c] = src[S * c + first] for c in [lo, hi); S a compile-time stride, so the loop vectorises.
template <int64_t S, typename T> inline void strided_copy(const T* src, int64_t first, int64_t lo, int64_t hi, T* dst) {
  for (int64_t c = lo; c < hi; ++c) dst[c] = src[S * c + first];
}

// ph (s*s planes) <- one channel x (h, w), zero outside it: ph(a, b)[r][c] = x[s*r + a - pad][s*c + b - pad].
template <typename T> void fill_phases(const T* x, const ConvGeom& g, const Phases& q, T* ph) {
  for (int64_t b = 0; b < q.s; ++b) {
    // Phase column c holds x column s*c + first: inside the row for c in [lo, hi).
    const int64_t first = b - g.pad;
    const int64_t lo = std::min(q.wq, first >= 0 ? 0 : (-first + q.s - 1) / q.s);
    const int64_t hi = std::max(lo, std::min(q.wq, (g.w - first + q.s - 1) / q.s));
    for (int64_t a = 0; a < q.s; ++a) {
      T* plane = ph + (a * q.s + b) * q.plane;
      for (int64_t r = 0; r < q.hq; ++r) {
        T* dst = plane + r * q.wq;
        const int64_t row = q.s * r + a - g.pad;
        if (row < 0 || row >= g.h) {
          std::fill(dst, dst + q.wq, T(0));
          continue;
        }
        const T* src = x + row * g.w;
        std::fill(dst, dst + lo, T(0));
        if (q.s == 1)
          std::copy(src + lo + first, src + hi + first, dst + lo);
        else if (q.s == 2)
          strided_copy<2>(src, first, lo, hi, dst);
        else
          for (int64_t c = lo; c < hi; ++c) dst[c] = src[q.s * c + first];
        std::fill(dst + hi, dst + q.wq, T(0));
      }
    }
  }
}

// ge (ho, wq) <- gy (ho, wo), zeros in the extra columns
template <typename T> void extend_rows(const T* gy, const ConvGeom& g, const Phases& q, T* ge) {
  for (int64_t oh = 0; oh < g.ho; ++oh) {
    std::copy(gy + oh * g.wo, gy + (oh + 1) * g.wo, ge + oh * q.wq);
    std::fill(ge + oh * q.wq + g.wo, ge + (oh + 1) * q.wq, T(0));
  }
}

// The split path. When the stride s divides the plane and the output is the input's size over s
// (MaxViT's 3x3 convs with padding 1, at stride 1 and 2), split x into s * s planes of the output's
// size, E(a, b)[r][c] = x[s*r + a][s*c + b], without padding. Tap (i, j) of output (oh, ow) reads
// input (s*oh + i - pad, s*ow + j - pad), that is E(a, b)[oh + di][ow + dj] with i - pad = s*di + a
// and j - pad = s*dj + b: in the output's flattened layout p = oh * wo + ow, the slice of E(a, b)
// shifted by di * wo + dj. So each tap is one loop over the whole plane (at stride 1 straight over
// x, no copy at all). Shifts that would read above the first or below the last row are cut off by
// the range of p; those that would read past the left or right edge land on the neighbouring row,
// and a column test drops them (a test, not a multiply by 0, which would turn an inf there into a
// NaN). col[p] = p % wo, made once per call.
bool is_split(const ConvGeom& g) {
  const int64_t s = g.stride;
  return g.h % s == 0 && g.w % s == 0 && g.ho * s == g.h && g.wo * s == g.w;
}

struct SplitTap {
  int64_t plane;   // which E(a, b): a * s + b
  int64_t off;     // index in E - output index
  int64_t p0, p1;  // outputs whose input row exists (and whose E index is inside the plane)
  int64_t lo, hi;  // output columns whose input column exists
};
SplitTap split_tap(const ConvGeom& g, int64_t i, int64_t j) {
  const int64_t s = g.stride, n = g.ho * g.wo;
  auto floor_div = [s](int64_t v) { return v >= 0 ? v / s : -((-v + s - 1) / s); };
  const int64_t di = floor_div(i - g.pad), dj = floor_div(j - g.pad);
  SplitTap t;
  t.plane = (i - g.pad - s * di) * s + (j - g.pad - s * dj);
  t.off = di * g.wo + dj;
  t.p0 = std::max({int64_t(0), -di * g.wo, -t.off});
  t.p1 = std::min({n, (g.ho - di) * g.wo, n - t.off});
  t.lo = -dj, t.hi = g.wo - dj;
  return t;
}

template <typename T> void column_index(const ConvGeom& g, T* col) {
  for (int64_t r = 0; r < g.ho; ++r)
    for (int64_t c = 0; c < g.wo; ++c) col[r * g.wo + c] = static_cast<T>(c);
}

// E (s*s planes of ho x wo) <- one channel x (h, w); and the adjoint, x <- E (interleave back).
template <typename T> void split_planes(const T* x, const ConvGeom& g, T* e) {
  const int64_t s = g.stride, n = g.ho * g.wo;
  for (int64_t row = 0; row < g.h; ++row)
    for (int64_t b = 0; b < s; ++b) {
      const T* src = x + row * g.w + b;
      T* dst = e + ((row % s) * s + b) * n + (row / s) * g.wo;
      if (s == 2)
        strided_copy<2>(src, 0, 0, g.wo, dst);
      else
        for (int64_t c = 0; c < g.wo; ++c) dst[c] = src[s * c];
    }
}
template <typename T> void merge_planes(const T* e, const ConvGeom& g, T* x) {
  const int64_t s = g.stride, n = g.ho * g.wo;
  for (int64_t row = 0; row < g.h; ++row)
    for (int64_t b = 0; b < s; ++b) {
      const T* src = e + ((row % s) * s + b) * n + (row / s) * g.wo;
      T* dst = x + row * g.w + b;
      for (int64_t c = 0; c < g.wo; ++c) dst[s * c] = src[c];
    }
}

}  // namespace

int64_t dw_scratch_size(const ConvGeom& g) {
  // split: the column index, and the planes E (or their gradient) unless the stride is 1
  if (is_split(g)) return g.ho * g.wo * (1 + (g.stride > 1 ? g.stride * g.stride : 0));
  const Phases q(g);
  return q.s * q.s * q.plane + q.len;
}

int64_t dw_acc_size(const ConvGeom& g) { return g.kh * g.kw * (is_split(g) ? g.ho * g.wo : Phases(g).len); }

template <typename T>
void dw_forward(const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t c0, int64_t c1, T* y, T* scratch) {
  if (is_split(g)) {
    const int64_t n = g.ho * g.wo;
    T* col = scratch;
    T* e = scratch + n;
    column_index(g, col);
    for (int64_t c = c0; c < c1; ++c) {
      const T* xc = x + c * g.h * g.w;
      if (g.stride > 1) split_planes(xc, g, e), xc = e;
      T* __restrict__ yc = y + c * n;
      std::fill(yc, yc + n, bias ? bias[c] : T(0));
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          const T wv = w[(c * g.kh + i) * g.kw + j];
          const SplitTap t = split_tap(g, i, j);
          const int64_t o = t.plane * n + t.off;  // E index = o + output index
          const T lo = static_cast<T>(t.lo), hi = static_cast<T>(t.hi);
          for (int64_t p = t.p0; p < t.p1; ++p) yc[p] += col[p] >= lo && col[p] < hi ? wv * xc[o + p] : T(0);
        }
    }
    return;
  }
  const Phases q(g);
  T* ph = scratch;
  T* __restrict__ ye = scratch + q.s * q.s * q.plane;
  for (int64_t c = c0; c < c1; ++c) {
    fill_phases(x + c * g.h * g.w, g, q, ph);
    std::fill(ye, ye + q.len, bias ? bias[c] : T(0));
    const T* wc = w + c * g.kh * g.kw;
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T wv = wc[i * g.kw + j];
        const T* __restrict__ src = ph + q.tap_offset(i, j);
        for (int64_t p = 0; p < q.len; ++p) ye[p] += wv * src[p];
      }
    T* yc = y + c * g.ho * g.wo;
    for (int64_t oh = 0; oh < g.ho; ++oh) std::copy(ye + oh * q.wq, ye + oh * q.wq + g.wo, yc + oh * g.wo);
  }
}

template <typename T>
void dw_backward_input(const T* gy, const T* w, const ConvGeom& g, int64_t c0, int64_t c1, T* gx, T* scratch) {
  if (is_split(g)) {  // dE[q] = sum over taps of w * gy[q - off], where output q - off exists
    const int64_t n = g.ho * g.wo;
    T* col = scratch;
    column_index(g, col);
    for (int64_t c = c0; c < c1; ++c) {
      const T* gyc = gy + c * n;
      T* gxc = gx + c * g.h * g.w;
      T* de = g.stride > 1 ? scratch + n : gxc;  // at stride 1, E is x itself
      std::fill(de, de + g.stride * g.stride * n, T(0));
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          const T wv = w[(c * g.kh + i) * g.kw + j];
          const SplitTap t = split_tap(g, i, j);
          const int64_t o = t.plane * n + t.off;
          const T lo = static_cast<T>(t.lo), hi = static_cast<T>(t.hi);
          for (int64_t p = t.p0; p < t.p1; ++p) de[o + p] += col[p] >= lo && col[p] < hi ? wv * gyc[p] : T(0);
        }
      if (g.stride > 1) merge_planes(de, g, gxc);
    }
    return;
  }
  const Phases q(g);
  T* dph = scratch;  // the gradient of the phase planes
  T* __restrict__ ge = scratch + q.s * q.s * q.plane;
  for (int64_t c = c0; c < c1; ++c) {
    extend_rows(gy + c * g.ho * g.wo, g, q, ge);
    std::fill(dph, dph + q.s * q.s * q.plane, T(0));
    const T* wc = w + c * g.kh * g.kw;
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T wv = wc[i * g.kw + j];
        T* __restrict__ dst = dph + q.tap_offset(i, j);
        for (int64_t p = 0; p < q.len; ++p) dst[p] += wv * ge[p];
      }
    // gx[ih][iw] is the phase entry of padded (ih + pad, iw + pad); pixels no window reaches get 0.
    T* gxc = gx + c * g.h * g.w;
    for (int64_t ih = 0; ih < g.h; ++ih) {
      const int64_t row = ih + g.pad, r = row / q.s;
      T* out = gxc + ih * g.w;
      std::fill(out, out + g.w, T(0));
      if (r >= q.hq) continue;
      const T* base = dph + (row % q.s) * q.s * q.plane + r * q.wq;
      for (int64_t b = 0; b < q.s; ++b) {  // columns b - pad, b - pad + s, ... from phase column b
        const T* src = base + b * q.plane;
        const int64_t first = b - g.pad;  // iw of cq = 0
        const int64_t cq0 = first >= 0 ? 0 : (-first + q.s - 1) / q.s;
        const int64_t cq1 = std::min(q.wq, (g.w - first + q.s - 1) / q.s);
        for (int64_t cq = cq0; cq < cq1; ++cq) out[first + cq * q.s] = src[cq];
      }
    }
  }
}

template <typename T>
void dw_backward_weight_acc(const T* gy, const T* x, const ConvGeom& g, int64_t c0, int64_t c1, T* acc, T* scratch) {
  if (is_split(g)) {
    const int64_t n = g.ho * g.wo, taps = g.kh * g.kw;
    T* col = scratch;
    T* e = scratch + n;
    column_index(g, col);
    for (int64_t c = c0; c < c1; ++c) {
      const T* xc = x + c * g.h * g.w;
      if (g.stride > 1) split_planes(xc, g, e), xc = e;
      const T* gyc = gy + c * n;
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          const SplitTap t = split_tap(g, i, j);
          const int64_t o = t.plane * n + t.off;
          const T lo = static_cast<T>(t.lo), hi = static_cast<T>(t.hi);
          T* __restrict__ a = acc + ((c - c0) * taps + i * g.kw + j) * n;
          for (int64_t p = t.p0; p < t.p1; ++p) a[p] += col[p] >= lo && col[p] < hi ? gyc[p] * xc[o + p] : T(0);
        }
    }
    return;
  }
  const Phases q(g);
  T* ph = scratch;
  T* __restrict__ ge = scratch + q.s * q.s * q.plane;
  const int64_t taps = g.kh * g.kw;
  for (int64_t c = c0; c < c1; ++c) {
    fill_phases(x + c * g.h * g.w, g, q, ph);
    extend_rows(gy + c * g.ho * g.wo, g, q, ge);
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* __restrict__ src = ph + q.tap_offset(i, j);
        T* __restrict__ a = acc + ((c - c0) * taps + i * g.kw + j) * q.len;
        for (int64_t p = 0; p < q.len; ++p) a[p] += ge[p] * src[p];
      }
  }
}

template <typename T> void dw_reduce(const T* acc, const ConvGeom& g, int64_t c0, int64_t c1, T* gw) {
  const int64_t taps = g.kh * g.kw, len = dw_acc_size(g) / taps;
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t t = 0; t < taps; ++t) {
      const T* a = acc + ((c - c0) * taps + t) * len;
      double s = 0;
      for (int64_t p = 0; p < len; ++p) s += a[p];
      gw[c * taps + t] = static_cast<T>(s);
    }
}

#define MG_INSTANTIATE(T)                                                                                      \
  template void dw_forward<T>(const T*, const T*, const T*, const ConvGeom&, int64_t, int64_t, T*, T*);       \
  template void dw_backward_input<T>(const T*, const T*, const ConvGeom&, int64_t, int64_t, T*, T*);          \
  template void dw_backward_weight_acc<T>(const T*, const T*, const ConvGeom&, int64_t, int64_t, T*, T*);     \
  template void dw_reduce<T>(const T*, const ConvGeom&, int64_t, int64_t, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
