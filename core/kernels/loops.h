// The one loop every elementwise kernel shares: walk N operands of the same shape, each with its
// own strides (0 for a broadcast dim), one innermost row at a time. Rows are handed out in fixed
// chunks by mg::parallel_for, so results never depend on the thread count.
#pragma once
#include <array>
#include <cstdint>

#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/tensor.h"

namespace mg::kernels {

// row(offsets, n, inner_strides): process n elements starting at element offsets[i] of operand i,
// stepping inner_strides[i]. Offsets are relative to each operand's data().
//
// Size-1 dims are dropped and neighbouring dims that every operand steps through as one are merged
// first (a contiguous tensor is one long row; (N, C, H, W) against a (N, C, 1, 1) operand is N*C rows
// of H*W), so rows are as long as the layouts allow; within a chunk the row offsets are stepped like
// an odometer rather than recomputed by division.
template <size_t N, typename Row>
void for_each_row(const Shape& shape, const std::array<Shape, N>& strides, Row&& row) {
  Shape sh;
  std::array<Shape, N> st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return;
    if (shape[d] == 1) continue;
    bool merge = !sh.empty();
    for (size_t i = 0; i < N && merge; ++i) merge = st[i].back() == strides[i][d] * shape[d];
    if (merge) {
      sh.back() *= shape[d];
      for (size_t i = 0; i < N; ++i) st[i].back() = strides[i][d];
    } else {
      sh.push_back(shape[d]);
      for (size_t i = 0; i < N; ++i) st[i].push_back(strides[i][d]);
    }
  }
  if (sh.empty()) {  // a single element
    std::array<int64_t, N> off{}, inner_st{};
    row(off, int64_t(1), inner_st);
    return;
  }
  const int64_t nd = static_cast<int64_t>(sh.size()), inner = sh.back();
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < nd; ++d) rows *= sh[d];
  std::array<int64_t, N> inner_st;
  for (size_t i = 0; i < N; ++i) inner_st[i] = st[i][nd - 1];
  // ~16k elements per task: big enough to amortise scheduling, small enough to balance 2+ cores.
  const int64_t grain = std::max<int64_t>(1, 16384 / inner);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    Shape idx(static_cast<size_t>(std::max<int64_t>(nd - 1, 0)));
    std::array<int64_t, N> off{};
    for (int64_t d = nd - 2, rem = r0; d >= 0; --d) {
      idx[d] = rem % sh[d];
      rem /= sh[d];
      for (size_t i = 0; i < N; ++i) off[i] += idx[d] * st[i][d];
    }
    for (int64_t r = r0; r < r1; ++r) {
      row(off, inner, inner_st);
      for (int64_t d = nd - 2; d >= 0; --d) {  // next row: the odometer
        for (size_t i = 0; i < N; ++i) off[i] += st[i][d];
        if (++idx[d] < sh[d]) break;
        for (size_t i = 0; i < N; ++i) off[i] -= st[i][d] * sh[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace mg::kernels
