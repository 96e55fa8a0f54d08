// Reference softmax and log_softmax over the last dim of a contiguous (rows, n) tensor: one row after
// another, std::exp, sums in double.
#pragma once
#include <cstdint>

namespace mg::reference {

// y[r] = e^(x[r] - m) / sum_i e^(x[r, i] - m), or with log, y[r] = x[r] - m - log(sum_i e^(x[r, i] - m)),
// m = max_i x[r, i]
template <typename T> void softmax(const T* x, int64_t rows, int64_t n, bool log, T* y);

// gx[r] = y[r] * (g[r] - sum_i g[r, i] y[r, i]), or with log, gx[r] = g[r] - e^y[r] * sum_i g[r, i]
template <typename T> void softmax_backward(const T* y, const T* g, int64_t rows, int64_t n, bool log, T* gx);

}  // namespace mg::reference
