// The one loop every elementwise kernel shares: walk N operands of the same shape, each with its
// own strides (0 for a broadcast dim), one innermost row at a time. Rows are handed out in fixed
// chunks by mg::parallel_for, so results never depend on the thread count.
#pragma once
#include <array>
#include <cstdint>

#include "core/parallel.h"
#include "core/tensor.h"

namespace mg::kernels {

// row(offsets, n, inner_strides): process n elements starting at element offsets[i] of operand i,
// stepping inner_strides[i]. Offsets are relative to each operand's data().
template <size_t N, typename Row>
void for_each_row(const Shape& shape, const std::array<Shape, N>& strides, Row&& row) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (nd == 0) {
    std::array<int64_t, N> off{}, st{};
    row(off, int64_t(1), st);
    return;
  }
  const int64_t inner = shape[nd - 1];
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < nd; ++d) rows *= shape[d];
  if (inner == 0 || rows == 0) return;
  std::array<int64_t, N> inner_st;
  for (size_t i = 0; i < N; ++i) inner_st[i] = strides[i][nd - 1];
  // ~16k elements per task: big enough to amortise scheduling, small enough to balance 2+ cores.
  int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      std::array<int64_t, N> off{};
      int64_t rem = r;
      for (int64_t d = nd - 2; d >= 0; --d) {
        int64_t idx = rem % shape[d];
        rem /= shape[d];
        for (size_t i = 0; i < N; ++i) off[i] += idx * strides[i][d];
      }
      row(off, inner, inner_st);
    }
  });
}

}  // namespace mg::kernels
