#include "maxgrad/core/kernels/depthwise.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "maxgrad/core/kernels/depthwise_3x3.h"
#include "maxgrad/core/kernels/simd.h"

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
// size, E(a, b)[r][c] = x[s*r + a][s*c + b], without padding (at stride 1, E is x itself). Tap (i, j)
// of output (oh, ow) reads input (s*oh + i - pad, s*ow + j - pad), that is E(a, b)[oh + di][ow + dj]
// with i - pad = s*di + a and j - pad = s*dj + b: in the output's flattened layout p = oh * wo + ow,
// the slice of E(a, b) shifted by off = di * wo + dj. So all taps go in one pass over the plane, a
// multiply-add per tap per output on contiguous slices, in vectors (taps_sum). Each tap reads
// a copy of its plane (ShiftedCopies) with zeros before and after it, so that a shift past the first
// or last row reads zeros, and with the columns zeroed that its shift dj carries across a row's edge
// (the last -dj columns for dj < 0, the first dj for dj > 0): what an output would wrap around to
// read there is exactly what the zero padding of the convolution would have given.
bool is_split(const ConvGeom& g) {
  const int64_t s = g.stride;
  return g.h % s == 0 && g.w % s == 0 && g.ho * s == g.h && g.wo * s == g.w;
}

struct SplitTap {
  int64_t plane;  // which E(a, b): a * s + b
  int64_t dj;     // the shift in columns
  int64_t off;    // di * wo + dj: index in E - output index
};
SplitTap split_tap(const ConvGeom& g, int64_t i, int64_t j) {
  const int64_t s = g.stride;
  auto floor_div = [s](int64_t v) { return v >= 0 ? v / s : -((-v + s - 1) / s); };
  const int64_t di = floor_div(i - g.pad), dj = floor_div(j - g.pad);
  return {(i - g.pad - s * di) * s + (j - g.pad - s * dj), dj, di * g.wo + dj};
}

std::vector<SplitTap> split_taps(const ConvGeom& g) {  // all of them, in (i, j) order, once per call
  std::vector<SplitTap> taps;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) taps.push_back(split_tap(g, i, j));
  return taps;
}

// The copies the taps read: one per distinct (plane, dj), each `pad` zeros, the plane, `pad` zeros
// (pad = the largest |off|). Forward: a tap reads its copy at output index + off, and its wrapped
// columns are zeroed as above. Backward (the transposed conv, reading gy at E index - off): the
// mirror image, the first -dj columns (dj < 0) or the last dj (dj > 0) zeroed.
struct CopyLayout {
  std::vector<std::pair<int64_t, int64_t>> keys;  // (plane, dj)
  std::vector<int64_t> copy_of;                   // per tap
  int64_t pad = 0, len = 0;
  bool backward = false;
  // (keys, ho*wo): all ones where a copy keeps the value, 0 in its cleared columns; as wide as float
  // and as double
  std::vector<uint32_t> mask32;
  std::vector<uint64_t> mask64;
  int64_t size() const { return static_cast<int64_t>(keys.size()) * len; }
};
CopyLayout copy_layout(const std::vector<SplitTap>& taps, const ConvGeom& g, bool backward) {
  CopyLayout l;
  l.backward = backward;
  for (const SplitTap& t : taps) {
    l.pad = std::max(l.pad, std::abs(t.off));
    const std::pair<int64_t, int64_t> key{backward ? 0 : t.plane, t.dj};  // backward: gy is one plane
    auto it = std::find(l.keys.begin(), l.keys.end(), key);
    l.copy_of.push_back(it - l.keys.begin());
    if (it == l.keys.end()) l.keys.push_back(key);
  }
  l.len = g.ho * g.wo + 2 * l.pad;
  const int64_t n = g.ho * g.wo;
  for (const auto& [plane, dj] : l.keys) {
    const bool last = (dj < 0) != backward;  // clear the last |dj| columns, or the first
    const int64_t c0 = last ? g.wo - std::abs(dj) : 0, c1 = last ? g.wo : std::abs(dj);
    for (int64_t p = 0; p < n; ++p) {
      const bool keep = dj == 0 || p % g.wo < c0 || p % g.wo >= c1;
      l.mask32.push_back(keep ? ~uint32_t(0) : 0);
      l.mask64.push_back(keep ? ~uint64_t(0) : 0);
    }
  }
  return l;
}

// Everything the split path derives from the geometry alone, made once per thread and geometry
// (the kernels are called for every few channels of every sample).
struct SplitPlan {
  ConvGeom g{};
  std::vector<SplitTap> taps;
  CopyLayout fwd, bwd;
  std::vector<std::vector<int64_t>> of_plane;  // the taps that read each plane
};
const SplitPlan& split_plan(const ConvGeom& g) {
  thread_local SplitPlan plan;
  thread_local bool made = false;
  const ConvGeom& p = plan.g;
  if (!made || p.h != g.h || p.w != g.w || p.kh != g.kh || p.kw != g.kw || p.stride != g.stride || p.pad != g.pad ||
      p.ho != g.ho || p.wo != g.wo) {
    plan.g = g;
    plan.taps = split_taps(g);
    plan.fwd = copy_layout(plan.taps, g, false);
    plan.bwd = copy_layout(plan.taps, g, true);
    plan.of_plane.assign(static_cast<size_t>(g.stride * g.stride), {});
    for (size_t t = 0; t < plan.taps.size(); ++t) plan.of_plane[plan.taps[t].plane].push_back(static_cast<int64_t>(t));
    made = true;
  }
  return plan;
}

// Each copy is one pass over the plane with vector loads and stores, the wrapped columns cleared by
// an AND with a mask of the copy's kept positions (exactly 0, whatever the value). Done as memcpy and
// one std::fill per row, the library calls for 1 KB copies and 1-value fills cost more than the
// copying itself.
template <typename T> struct ShiftedCopies {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const CopyLayout& l;
  int64_t n;
  T* buf;
  ShiftedCopies(const CopyLayout& layout, const ConvGeom& g, T* b) : l(layout), n(g.ho * g.wo), buf(b) {
    for (size_t k = 0; k < l.keys.size(); ++k) {  // the zeros before and after each copy, once
      std::fill(buf + k * l.len, buf + k * l.len + l.pad, T(0));
      std::fill(buf + k * l.len + l.pad + n, buf + (k + 1) * l.len, T(0));
    }
  }
  const Bits* masks() const {
    if constexpr (sizeof(T) == 4)
      return l.mask32.data();
    else
      return l.mask64.data();
  }
  // planes: plane k at planes + k * n
  void load(const T* planes) {
    constexpr int64_t W = kVecLanes<T>;
    for (size_t k = 0; k < l.keys.size(); ++k) {
      const T* src = planes + l.keys[k].first * n;
      T* d = buf + k * l.len + l.pad;
      const Bits* m = masks() + k * n;
      int64_t p = 0;
      for (; p + W <= n; p += W) {
        Vec<Bits> v;
        std::memcpy(&v, src + p, sizeof v);
        v &= vload(m + p);
        std::memcpy(d + p, &v, sizeof v);
      }
      for (; p < n; ++p) {
        Bits v;
        std::memcpy(&v, src + p, sizeof v);
        v &= m[p];
        std::memcpy(d + p, &v, sizeof v);
      }
    }
  }
  const T* tap(const std::vector<SplitTap>& taps, size_t t) const {
    return buf + l.copy_of[t] * l.len + l.pad + (l.backward ? -taps[t].off : taps[t].off);
  }
};

// Taps go in groups of up to 9 with the group size a compile-time count, so that the loops over a
// group's taps unroll and their partial sums stay in registers: f(t0, std::integral_constant<int, N>)
// for each group of N taps starting at t0.
template <typename F> void for_tap_groups(int64_t count, F f) {
  for (int64_t t0 = 0; t0 < count; t0 += 9) {
    switch (std::min<int64_t>(9, count - t0)) {
      case 1: f(t0, std::integral_constant<int, 1>{}); break;
      case 2: f(t0, std::integral_constant<int, 2>{}); break;
      case 3: f(t0, std::integral_constant<int, 3>{}); break;
      case 4: f(t0, std::integral_constant<int, 4>{}); break;
      case 5: f(t0, std::integral_constant<int, 5>{}); break;
      case 6: f(t0, std::integral_constant<int, 6>{}); break;
      case 7: f(t0, std::integral_constant<int, 7>{}); break;
      case 8: f(t0, std::integral_constant<int, 8>{}); break;
      default: f(t0, std::integral_constant<int, 9>{}); break;
    }
  }
}

// out[p] = init (+ out[p] if add) + sum over the N taps of w[t] * src[t][p]. Positions go in blocks of
// one vector, the taps inside: the block stays in a register (an explicit vector: see simd.h; as a
// local array this ran at a third of the speed).
template <int N, typename T> void taps_sum(int64_t n, const T* const* src, const T* w, T init, bool add, T* out) {
  using V = Vec<T>;
  constexpr int64_t W = kVecLanes<T>;
  const T* s[N];
  V wv[N];
  for (int t = 0; t < N; ++t) s[t] = src[t], wv[t] = V{} + w[t];
  int64_t p0 = 0;
  for (; p0 + W <= n; p0 += W) {
    V acc = add ? vload(out + p0) + init : V{} + init;
    for (int t = 0; t < N; ++t) acc += wv[t] * vload(s[t] + p0);
    vstore(out + p0, acc);
  }
  for (int64_t p = p0; p < n; ++p) {
    T acc = add ? out[p] + init : init;
    for (int t = 0; t < N; ++t) acc += w[t] * s[t][p];
    out[p] = acc;
  }
}
// Any number of taps: the first group starts from init, the others add to out.
template <typename T> void taps_sum_any(int64_t count, int64_t n, const T* const* src, const T* w, T init, T* out) {
  if (count == 0) return std::fill(out, out + n, init);
  for_tap_groups(count, [&](int64_t t0, auto group) {
    const bool add = t0 > 0;
    taps_sum<decltype(group)::value>(n, src + t0, w + t0, add ? T(0) : init, add, out);
  });
}

template <typename T> void add_products(int64_t n, const T* g, const T* src, T* __restrict__ acc) {
  for (int64_t p = 0; p < n; ++p) acc[p] += g[p] * src[p];
}

// For the N taps at once: acc[t][0, W) += the products g[p] * src[t][p] summed over the plane into
// the W lanes of one vector (position p into lane p % W). One read of g serves every tap, and each
// tap's partial sum stays in a register: a third of the memory traffic of add_products per tap.
// Needs n >= W (acc[t] holds W values). Each lane's float sum now runs over n / W positions of every
// sample (64 per sample at 32x32 in float, 8 in double) before dw_reduce adds the lanes in double;
// it was one position of every sample before. Still a fixed order, and the gradchecks and golden
// cases hold.
template <int N, typename T> void tap_dots(int64_t n, const T* g, const T* const* src, T* const* acc) {
  using V = Vec<T>;
  constexpr int64_t W = kVecLanes<T>;
  V sum[N];
  for (int t = 0; t < N; ++t) sum[t] = V{};
  int64_t p0 = 0;
  for (; p0 + W <= n; p0 += W) {
    const V gv = vload(g + p0);
    for (int t = 0; t < N; ++t) sum[t] += gv * vload(src[t] + p0);
  }
  for (int64_t p = p0; p < n; ++p)
    for (int t = 0; t < N; ++t) sum[t][p - p0] += g[p] * src[t][p];
  for (int t = 0; t < N; ++t) vstore(acc[t], vload(acc[t]) + sum[t]);
}
template <typename T> void tap_dots_any(int64_t count, int64_t n, const T* g, const T* const* src, T* const* acc) {
  for_tap_groups(count, [&](int64_t t0, auto group) { tap_dots<decltype(group)::value>(n, g, src + t0, acc + t0); });
}

// E (s*s planes of ho x wo, plane k at e + k * step) <- one channel x (h, w); and the adjoint,
// x <- E (interleave back).
template <typename T> void split_planes(const T* x, const ConvGeom& g, T* e, int64_t step) {
  const int64_t s = g.stride;
  if (s == 2) {  // both column phases of a row at once: a vector deinterleave
    constexpr int64_t W = kVecLanes<T>;
    for (int64_t row = 0; row < g.h; ++row) {
      const T* src = x + row * g.w;
      T* d0 = e + (row % 2) * 2 * step + (row / 2) * g.wo;
      T* d1 = d0 + step;
      int64_t c = 0;
      for (; c + W <= g.wo; c += W) {
        Vec<T> even, odd;
        vdeinterleave(src + 2 * c, even, odd);
        vstore(d0 + c, even);
        vstore(d1 + c, odd);
      }
      for (; c < g.wo; ++c) d0[c] = src[2 * c], d1[c] = src[2 * c + 1];
    }
    return;
  }
  for (int64_t row = 0; row < g.h; ++row)
    for (int64_t b = 0; b < s; ++b) {
      const T* src = x + row * g.w + b;
      T* dst = e + ((row % s) * s + b) * step + (row / s) * g.wo;
      for (int64_t c = 0; c < g.wo; ++c) dst[c] = src[s * c];
    }
}
template <typename T> void merge_planes(const T* e, const ConvGeom& g, T* x) {
  const int64_t s = g.stride, n = g.ho * g.wo;
  if (s == 2) {  // both column phases of a row at once: a vector interleave
    constexpr int64_t W = kVecLanes<T>;
    for (int64_t row = 0; row < g.h; ++row) {
      const T* s0 = e + (row % 2) * 2 * n + (row / 2) * g.wo;
      const T* s1 = s0 + n;
      T* dst = x + row * g.w;
      int64_t c = 0;
      for (; c + W <= g.wo; c += W) vinterleave(dst + 2 * c, vload(s0 + c), vload(s1 + c));
      for (; c < g.wo; ++c) dst[2 * c] = s0[c], dst[2 * c + 1] = s1[c];
    }
    return;
  }
  for (int64_t row = 0; row < g.h; ++row)
    for (int64_t b = 0; b < s; ++b) {
      const T* src = e + ((row % s) * s + b) * n + (row / s) * g.wo;
      T* dst = x + row * g.w + b;
      for (int64_t c = 0; c < g.wo; ++c) dst[s * c] = src[c];
    }
}

}  // namespace

int64_t dw_scratch_size(const ConvGeom& g) {
  if (is_split(g)) {  // forward and weight: split planes (stride > 1) and their copies; backward: gy's, and dE
    const SplitPlan& plan = split_plan(g);
    const int64_t n = g.ho * g.wo, planes = g.stride * g.stride;
    const int64_t fwd = (g.stride > 1 ? planes * n : 0) + plan.fwd.size();
    const int64_t bwd = plan.bwd.size() + (g.stride > 1 ? planes * n : 0);
    return std::max(fwd, bwd);
  }
  const Phases q(g);
  return q.s * q.s * q.plane + q.len;
}

int64_t dw_acc_size(const ConvGeom& g) { return g.kh * g.kw * (is_split(g) ? g.ho * g.wo : Phases(g).len); }

template <typename T>
void dw_forward(const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t c0, int64_t c1, T* y, T* scratch) {
  if (dw3x3_fits<T>(g)) {
    for (int64_t c = c0; c < c1; ++c)
      dw3x3_forward(x + c * g.h * g.w, w + c * 9, bias ? bias[c] : T(0), g, y + c * g.ho * g.wo);
    return;
  }
  if (is_split(g)) {
    const int64_t n = g.ho * g.wo, ntaps = g.kh * g.kw;
    const SplitPlan& plan = split_plan(g);
    const std::vector<SplitTap>& taps = plan.taps;
    const bool split_here = g.stride > 1;
    T* e = scratch;  // the split planes, when split here
    ShiftedCopies<T> xs(plan.fwd, g, scratch + (split_here ? g.stride * g.stride * n : 0));
    std::vector<const T*> src(static_cast<size_t>(ntaps));
    for (int64_t t = 0; t < ntaps; ++t) src[t] = xs.tap(taps, t);
    for (int64_t c = c0; c < c1; ++c) {
      const T* xc = x + c * g.h * g.w;
      if (split_here) split_planes(xc, g, e, n), xc = e;
      xs.load(xc);
      taps_sum_any(ntaps, n, src.data(), w + c * ntaps, bias ? bias[c] : T(0), y + c * n);
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
  if (dw3x3_fits<T>(g)) {
    for (int64_t c = c0; c < c1; ++c) dw3x3_backward_input(gy + c * g.ho * g.wo, w + c * 9, g, gx + c * g.h * g.w);
    return;
  }
  if (is_split(g)) {  // dE[q] = sum over taps of w * gy[q - off], where output q - off exists
    const int64_t n = g.ho * g.wo, ntaps = g.kh * g.kw, planes = g.stride * g.stride;
    const SplitPlan& plan = split_plan(g);
    const std::vector<SplitTap>& taps = plan.taps;
    ShiftedCopies<T> gs(plan.bwd, g, scratch);
    T* de = scratch + plan.bwd.size();  // stride > 1: the gradient of the planes, then interleaved into gx
    const std::vector<std::vector<int64_t>>& of_plane = plan.of_plane;
    std::vector<const T*> src(static_cast<size_t>(ntaps));
    std::vector<T> wv(static_cast<size_t>(ntaps));
    for (int64_t c = c0; c < c1; ++c) {
      gs.load(gy + c * n);
      T* gxc = gx + c * g.h * g.w;
      for (int64_t k = 0; k < planes; ++k) {
        const std::vector<int64_t>& ts = of_plane[k];
        for (size_t u = 0; u < ts.size(); ++u) src[u] = gs.tap(taps, ts[u]), wv[u] = w[c * ntaps + ts[u]];
        T* out = g.stride > 1 ? de + k * n : gxc;  // at stride 1, E is x itself
        taps_sum_any(static_cast<int64_t>(ts.size()), n, src.data(), wv.data(), T(0), out);
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
  if (dw3x3_fits<T>(g)) {  // the split path's layout (is_split holds): one vector of lanes per tap
    const int64_t n = g.ho * g.wo;
    for (int64_t c = c0; c < c1; ++c) {
      T* a[9];
      for (int64_t t = 0; t < 9; ++t) a[t] = acc + ((c - c0) * 9 + t) * n;
      dw3x3_weight_lanes(gy + c * n, x + c * g.h * g.w, g, a);
    }
    return;
  }
  if (is_split(g)) {
    const int64_t n = g.ho * g.wo, ntaps = g.kh * g.kw;
    const SplitPlan& plan = split_plan(g);
    const std::vector<SplitTap>& taps = plan.taps;
    const bool split_here = g.stride > 1;
    T* e = scratch;
    ShiftedCopies<T> xs(plan.fwd, g, scratch + (split_here ? g.stride * g.stride * n : 0));
    // A plane of at least one vector is summed into lanes (tap_dots); a smaller one by position.
    const bool lanes = n >= kVecLanes<T>;
    std::vector<const T*> src(static_cast<size_t>(ntaps));
    std::vector<T*> dst(static_cast<size_t>(ntaps));
    for (int64_t t = 0; t < ntaps; ++t) src[t] = xs.tap(taps, t);
    for (int64_t c = c0; c < c1; ++c) {
      const T* xc = x + c * g.h * g.w;
      if (split_here) split_planes(xc, g, e, n), xc = e;
      xs.load(xc);
      for (int64_t t = 0; t < ntaps; ++t) dst[t] = acc + ((c - c0) * ntaps + t) * n;
      if (lanes)
        tap_dots_any(ntaps, n, gy + c * n, src.data(), dst.data());
      else
        for (int64_t t = 0; t < ntaps; ++t) add_products(n, gy + c * n, src[t], dst[t]);
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

#define MG_INSTANTIATE(T)                                                                                 \
  template void dw_forward<T>(const T*, const T*, const T*, const ConvGeom&, int64_t, int64_t, T*, T*);   \
  template void dw_backward_input<T>(const T*, const T*, const ConvGeom&, int64_t, int64_t, T*, T*);      \
  template void dw_backward_weight_acc<T>(const T*, const T*, const ConvGeom&, int64_t, int64_t, T*, T*); \
  template void dw_reduce<T>(const T*, const ConvGeom&, int64_t, int64_t, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
