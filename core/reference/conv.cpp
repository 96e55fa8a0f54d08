#include "maxgrad/core/reference/conv.h"

namespace mg::reference {

namespace {

// Flat indices into the NCHW tensors and the weight.
struct Index {
  const Conv2dShape& s;
  int64_t x(int64_t b, int64_t c, int64_t ih, int64_t iw) const { return ((b * s.c + c) * s.h + ih) * s.w + iw; }
  int64_t y(int64_t b, int64_t o, int64_t oh, int64_t ow) const { return ((b * s.o + o) * s.ho + oh) * s.wo + ow; }
  int64_t w(int64_t o, int64_t c, int64_t i, int64_t j) const {
    return ((o * (s.c / s.groups) + c) * s.kh + i) * s.kw + j;
  }
};

// The output position that tap t reads input position `in` from, along one axis: in = out * stride - pad + t.
// -1 when there is none (in + pad - t not a multiple of the stride, or out outside [0, out_size)).
int64_t output_of(int64_t in, int64_t t, int64_t stride, int64_t pad, int64_t out_size) {
  const int64_t num = in + pad - t;
  if (num < 0 || num % stride != 0 || num / stride >= out_size) return -1;
  return num / stride;
}

}  // namespace

template <typename T> void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const Index at{s};
  const int64_t cg = s.c / s.groups, og = s.o / s.groups;  // channels per group, in and out
  for (int64_t b = 0; b < s.n; ++b)
    for (int64_t o = 0; o < s.o; ++o)
      for (int64_t oh = 0; oh < s.ho; ++oh)
        for (int64_t ow = 0; ow < s.wo; ++ow) {
          const int64_t group = o / og;
          double acc = bias ? static_cast<double>(bias[o]) : 0.0;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t i = 0; i < s.kh; ++i)
              for (int64_t j = 0; j < s.kw; ++j) {
                const int64_t ih = oh * s.stride - s.pad + i, iw = ow * s.stride - s.pad + j;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;  // padding: x is 0 there
                acc +=
                    static_cast<double>(w[at.w(o, c, i, j)]) * static_cast<double>(x[at.x(b, group * cg + c, ih, iw)]);
              }
          y[at.y(b, o, oh, ow)] = static_cast<T>(acc);
        }
}

template <typename T>
void conv2d_backward(const Conv2dShape& s, const T* gy, const T* x, const T* w, T* gx, T* gw, T* gb) {
  const Index at{s};
  const int64_t cg = s.c / s.groups, og = s.o / s.groups;
  if (gx)  // gx (b, c, ih, iw): every (o, i, j) in c's group whose output (oh, ow) reads it under tap (i, j)
    for (int64_t b = 0; b < s.n; ++b)
      for (int64_t c = 0; c < s.c; ++c)
        for (int64_t ih = 0; ih < s.h; ++ih)
          for (int64_t iw = 0; iw < s.w; ++iw) {
            const int64_t group = c / cg;
            double acc = 0;
            for (int64_t o = group * og; o < (group + 1) * og; ++o)
              for (int64_t i = 0; i < s.kh; ++i)
                for (int64_t j = 0; j < s.kw; ++j) {
                  const int64_t oh = output_of(ih, i, s.stride, s.pad, s.ho);
                  const int64_t ow = output_of(iw, j, s.stride, s.pad, s.wo);
                  if (oh < 0 || ow < 0) continue;
                  acc += static_cast<double>(gy[at.y(b, o, oh, ow)]) * static_cast<double>(w[at.w(o, c % cg, i, j)]);
                }
            gx[at.x(b, c, ih, iw)] = static_cast<T>(acc);
          }
  if (gw)  // gw (o, c, i, j): gy times the input each output read under tap (i, j), over samples and outputs
    for (int64_t o = 0; o < s.o; ++o)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t i = 0; i < s.kh; ++i)
          for (int64_t j = 0; j < s.kw; ++j) {
            const int64_t group = o / og;
            double acc = 0;
            for (int64_t b = 0; b < s.n; ++b)
              for (int64_t oh = 0; oh < s.ho; ++oh)
                for (int64_t ow = 0; ow < s.wo; ++ow) {
                  const int64_t ih = oh * s.stride - s.pad + i, iw = ow * s.stride - s.pad + j;
                  if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                  acc += static_cast<double>(gy[at.y(b, o, oh, ow)]) *
                         static_cast<double>(x[at.x(b, group * cg + c, ih, iw)]);
                }
            gw[at.w(o, c, i, j)] = static_cast<T>(acc);
          }
  if (gb)  // gb (o): gy summed over samples and output positions
    for (int64_t o = 0; o < s.o; ++o) {
      double acc = 0;
      for (int64_t b = 0; b < s.n; ++b)
        for (int64_t oh = 0; oh < s.ho; ++oh)
          for (int64_t ow = 0; ow < s.wo; ++ow) acc += static_cast<double>(gy[at.y(b, o, oh, ow)]);
      gb[o] = static_cast<T>(acc);
    }
}

#define MG_INSTANTIATE(T)                                                                \
  template void conv2d_forward<T>(const Conv2dShape&, const T*, const T*, const T*, T*); \
  template void conv2d_backward<T>(const Conv2dShape&, const T*, const T*, const T*, T*, T*, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::reference
