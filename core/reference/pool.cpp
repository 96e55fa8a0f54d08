#include "maxgrad/core/reference/pool.h"

#include <algorithm>
#include <vector>

namespace mg::reference {

namespace {

// One output's window along one axis: [lo, hi) inside the input, and its extent in the divisor.
struct Window {
  int64_t lo, hi, extent;
};
Window window(int64_t out, int64_t in_size, const PoolGeom& g) {
  const int64_t start = out * g.s - g.p, end = std::min(start + g.k, in_size + g.p);  // in the padded input
  const int64_t lo = std::max<int64_t>(start, 0), hi = std::min(end, in_size);
  return {lo, hi, g.include_pad ? end - start : hi - lo};
}

}  // namespace

template <typename T> void avg_pool2d_forward(const PoolGeom& g, int64_t planes, const T* x, T* y) {
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t oh = 0; oh < g.ho; ++oh)
      for (int64_t ow = 0; ow < g.wo; ++ow) {
        const Window r = window(oh, g.h, g), c = window(ow, g.w, g);
        double sum = 0;
        for (int64_t ih = r.lo; ih < r.hi; ++ih)
          for (int64_t iw = c.lo; iw < c.hi; ++iw) sum += static_cast<double>(x[(pl * g.h + ih) * g.w + iw]);
        y[(pl * g.ho + oh) * g.wo + ow] = static_cast<T>(sum / static_cast<double>(r.extent * c.extent));
      }
}

template <typename T> void avg_pool2d_backward(const PoolGeom& g, int64_t planes, const T* gy, T* gx) {
  std::vector<double> acc(static_cast<size_t>(g.h * g.w));  // one plane of gx, summed in double
  for (int64_t pl = 0; pl < planes; ++pl) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t oh = 0; oh < g.ho; ++oh)
      for (int64_t ow = 0; ow < g.wo; ++ow) {
        const Window r = window(oh, g.h, g), c = window(ow, g.w, g);
        const double share =
            static_cast<double>(gy[(pl * g.ho + oh) * g.wo + ow]) / static_cast<double>(r.extent * c.extent);
        for (int64_t ih = r.lo; ih < r.hi; ++ih)
          for (int64_t iw = c.lo; iw < c.hi; ++iw) acc[static_cast<size_t>(ih * g.w + iw)] += share;
      }
    for (int64_t i = 0; i < g.h * g.w; ++i) gx[pl * g.h * g.w + i] = static_cast<T>(acc[static_cast<size_t>(i)]);
  }
}

#define MG_INSTANTIATE(T)                                                      \
  template void avg_pool2d_forward<T>(const PoolGeom&, int64_t, const T*, T*); \
  template void avg_pool2d_backward<T>(const PoolGeom&, int64_t, const T*, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::reference
