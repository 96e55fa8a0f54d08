#include "maxgrad/core/reference/softmax.h"

#include <cmath>

namespace mg::reference {

template <typename T> void softmax(const T* x, int64_t rows, int64_t n, bool log, T* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* in = x + r * n;
    T* out = y + r * n;
    T m = in[0];
    for (int64_t i = 1; i < n; ++i) m = in[i] > m ? in[i] : m;
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(in[i] - m));
    for (int64_t i = 0; i < n; ++i)
      out[i] =
          log ? static_cast<T>(in[i] - m - std::log(s)) : static_cast<T>(std::exp(static_cast<double>(in[i] - m)) / s);
  }
}

template <typename T> void softmax_backward(const T* y, const T* g, int64_t rows, int64_t n, bool log, T* gx) {
  for (int64_t r = 0; r < rows; ++r) {
    const T *yr = y + r * n, *gr = g + r * n;
    T* out = gx + r * n;
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += log ? static_cast<double>(gr[i]) : static_cast<double>(gr[i]) * yr[i];
    for (int64_t i = 0; i < n; ++i)
      out[i] =
          log ? static_cast<T>(gr[i] - std::exp(static_cast<double>(yr[i])) * s) : static_cast<T>(yr[i] * (gr[i] - s));
  }
}

template void softmax<float>(const float*, int64_t, int64_t, bool, float*);
template void softmax<double>(const double*, int64_t, int64_t, bool, double*);
template void softmax_backward<float>(const float*, const float*, int64_t, int64_t, bool, float*);
template void softmax_backward<double>(const double*, const double*, int64_t, int64_t, bool, double*);

}  // namespace mg::reference
