#include "core/kernels/conv.h"

#include <algorithm>
#include <cstring>

namespace mg::kernels {

// For kernel column j, the output columns whose input column ow * stride - pad + j is inside the
// row: [lo, hi). Outside it im2col writes zeros and col2im adds nothing, so the loops over [lo, hi)
// need no bounds checks (and, at stride 1, are a plain copy or add).
inline void valid_cols(const ConvGeom& g, int64_t j, int64_t& lo, int64_t& hi) {
  lo = std::min(g.wo, std::max<int64_t>(0, (g.pad - j + g.stride - 1) / g.stride));
  hi = std::max(lo, std::min<int64_t>(g.wo, (g.w + g.pad - j + g.stride - 1) / g.stride));
}

template <typename T> void im2col(const T* x, const ConvGeom& g, T* col, int64_t oh0, int64_t oh1) {
  if (oh1 < 0) oh1 = g.ho;
  const int64_t len = (oh1 - oh0) * g.wo;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        T* row = col + ((c * g.kh + i) * g.kw + j) * len;
        int64_t lo, hi;
        valid_cols(g, j, lo, hi);
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const int64_t ih = oh * g.stride - g.pad + i;
          T* out = row + (oh - oh0) * g.wo;
          if (ih < 0 || ih >= g.h) {
            std::fill(out, out + g.wo, T(0));
            continue;
          }
          const T* in = x + (c * g.h + ih) * g.w;
          const int64_t shift = j - g.pad;  // output column ow reads input column ow * stride + shift
          std::fill(out, out + lo, T(0));
          if (g.stride == 1)
            std::copy(in + lo + shift, in + hi + shift, out + lo);
          else
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * g.stride + shift];
          std::fill(out + hi, out + g.wo, T(0));
        }
      }
}

template <typename T> void col2im(const T* col, const ConvGeom& g, T* x, int64_t oh0, int64_t oh1) {
  if (oh1 < 0) oh1 = g.ho;
  const int64_t len = (oh1 - oh0) * g.wo;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* row = col + ((c * g.kh + i) * g.kw + j) * len;
        int64_t lo, hi;
        valid_cols(g, j, lo, hi);
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const int64_t ih = oh * g.stride - g.pad + i;
          if (ih < 0 || ih >= g.h) continue;
          T* out = x + (c * g.h + ih) * g.w;
          const int64_t shift = j - g.pad;
          const T* in = row + (oh - oh0) * g.wo;
          if (g.stride == 1)
            for (int64_t ow = lo; ow < hi; ++ow) out[ow + shift] += in[ow];
          else
            for (int64_t ow = lo; ow < hi; ++ow) out[ow * g.stride + shift] += in[ow];
        }
      }
}

// The depthwise kernels loop output rows outermost and kernel taps inside, so the innermost loop
// runs along a contiguous output row (the compiler vectorises it for stride 1).
template <typename T>
void depthwise_forward(const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t c0, int64_t c1, T* y) {
  for (int64_t c = c0; c < c1; ++c) {
    const T* xc = x + c * g.h * g.w;
    const T* wc = w + c * g.kh * g.kw;
    T* yc = y + c * g.ho * g.wo;
    std::fill(yc, yc + g.ho * g.wo, bias ? bias[c] : T(0));
    for (int64_t oh = 0; oh < g.ho; ++oh) {
      T* yrow = yc + oh * g.wo;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = oh * g.stride - g.pad + i;
        if (ih < 0 || ih >= g.h) continue;
        const T* xrow = xc + ih * g.w;
        for (int64_t j = 0; j < g.kw; ++j) {
          const T wv = wc[i * g.kw + j];
          // valid ow: 0 <= ow*s - p + j < w
          int64_t lo = std::max<int64_t>(0, (g.pad - j + g.stride - 1) / g.stride);
          int64_t hi = std::min<int64_t>(g.wo, (g.w + g.pad - j + g.stride - 1) / g.stride);
          if (g.stride == 1) {
            const T* xs = xrow - g.pad + j;
            for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xs[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[ow * g.stride - g.pad + j];
          }
        }
      }
    }
  }
}

template <typename T>
void depthwise_backward_input(const T* gy, const T* w, const ConvGeom& g, int64_t c0, int64_t c1, T* gx) {
  for (int64_t c = c0; c < c1; ++c) {
    const T* gyc = gy + c * g.ho * g.wo;
    const T* wc = w + c * g.kh * g.kw;
    T* gxc = gx + c * g.h * g.w;
    std::fill(gxc, gxc + g.h * g.w, T(0));
    for (int64_t oh = 0; oh < g.ho; ++oh) {
      const T* grow = gyc + oh * g.wo;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = oh * g.stride - g.pad + i;
        if (ih < 0 || ih >= g.h) continue;
        T* xrow = gxc + ih * g.w;
        for (int64_t j = 0; j < g.kw; ++j) {
          const T wv = wc[i * g.kw + j];
          int64_t lo = std::max<int64_t>(0, (g.pad - j + g.stride - 1) / g.stride);
          int64_t hi = std::min<int64_t>(g.wo, (g.w + g.pad - j + g.stride - 1) / g.stride);
          for (int64_t ow = lo; ow < hi; ++ow) xrow[ow * g.stride - g.pad + j] += wv * grow[ow];
        }
      }
    }
  }
}

template <typename T>
void depthwise_backward_weight(const T* gy, const T* x, const ConvGeom& g, int64_t c0, int64_t c1, T* gw) {
  for (int64_t c = c0; c < c1; ++c) {
    const T* gyc = gy + c * g.ho * g.wo;
    const T* xc = x + c * g.h * g.w;
    T* gwc = gw + c * g.kh * g.kw;
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        int64_t lo = std::max<int64_t>(0, (g.pad - j + g.stride - 1) / g.stride);
        int64_t hi = std::min<int64_t>(g.wo, (g.w + g.pad - j + g.stride - 1) / g.stride);
        T acc = 0;
        for (int64_t oh = 0; oh < g.ho; ++oh) {
          const int64_t ih = oh * g.stride - g.pad + i;
          if (ih < 0 || ih >= g.h) continue;
          const T* xrow = xc + ih * g.w;
          const T* grow = gyc + oh * g.wo;
          for (int64_t ow = lo; ow < hi; ++ow) acc += grow[ow] * xrow[ow * g.stride - g.pad + j];
        }
        gwc[i * g.kw + j] += acc;
      }
  }
}

template <typename T> void conv2d_reference(const T* x, const T* w, const T* bias, int64_t n, int64_t c_in, int64_t h,
                                            int64_t w_in, int64_t c_out, int64_t kh, int64_t kw, int64_t stride,
                                            int64_t pad, int64_t groups, T* y) {
  const int64_t ho = (h + 2 * pad - kh) / stride + 1, wo = (w_in + 2 * pad - kw) / stride + 1;
  const int64_t cg = c_in / groups, og = c_out / groups;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t o = 0; o < c_out; ++o)
      for (int64_t oh = 0; oh < ho; ++oh)
        for (int64_t ow = 0; ow < wo; ++ow) {
          double acc = bias ? bias[o] : 0.0;
          const int64_t grp = o / og;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ih = oh * stride - pad + i, iw = ow * stride - pad + j;
                if (ih < 0 || ih >= h || iw < 0 || iw >= w_in) continue;
                acc += static_cast<double>(w[((o * cg + c) * kh + i) * kw + j]) *
                       static_cast<double>(x[((b * c_in + grp * cg + c) * h + ih) * w_in + iw]);
              }
          y[((b * c_out + o) * ho + oh) * wo + ow] = static_cast<T>(acc);
        }
}

#define MG_INSTANTIATE(T)                                                                                      \
  template void im2col<T>(const T*, const ConvGeom&, T*, int64_t, int64_t);                                    \
  template void col2im<T>(const T*, const ConvGeom&, T*, int64_t, int64_t);                                    \
  template void depthwise_forward<T>(const T*, const T*, const T*, const ConvGeom&, int64_t, int64_t, T*);     \
  template void depthwise_backward_input<T>(const T*, const T*, const ConvGeom&, int64_t, int64_t, T*);        \
  template void depthwise_backward_weight<T>(const T*, const T*, const ConvGeom&, int64_t, int64_t, T*);       \
  template void conv2d_reference<T>(const T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                    int64_t, int64_t, int64_t, int64_t, int64_t, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
