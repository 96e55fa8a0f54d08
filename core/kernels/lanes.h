// Vectorisable sums in double. A plain `acc += v[i]` loop cannot be vectorised: every add waits
// for the one before, and the compiler may not reorder floating-point adds. Keeping L partial sums
// instead (value i goes to lane i % L) gives L independent chains the compiler turns into SIMD adds;
// the lanes are then added up in a fixed order, so the result depends only on the length, never on
// the thread count, and each lane is still an exact-order double sum.
#pragma once
#include <cstdint>

namespace mg::kernels {

// part[l] += f(i) for every i in [0, len) with i % L == l.
template <int64_t L, typename F> inline void add_lanes(int64_t len, double* part, F f) {
  int64_t i = 0;
  for (; i + L <= len; i += L)
    for (int64_t l = 0; l < L; ++l) part[l] += f(i + l);
  for (int64_t l = 0; i + l < len; ++l) part[l] += f(i + l);
}

template <int64_t L> inline double combine_lanes(const double* part) {
  double s = 0;
  for (int64_t l = 0; l < L; ++l) s += part[l];
  return s;
}

}  // namespace mg::kernels
