#include "maxgrad/core/kernels/conv.h"

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

#define MG_INSTANTIATE(T)                                                   \
  template void im2col<T>(const T*, const ConvGeom&, T*, int64_t, int64_t); \
  template void col2im<T>(const T*, const ConvGeom&, T*, int64_t, int64_t);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
