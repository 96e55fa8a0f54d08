// The copies behind to_token_rows / from_token_rows (core/ops/token_rows.cpp): between a feature
// map x (b, c, hw) and rows of tokens t (b, hw, c), position p going to row rows[p] (a permutation
// of 0..hw-1). The copy goes by blocks of one vector's width square (16 x 16 floats), transposed in
// registers, so that both the map's rows (along p) and the tokens' rows (along c) are read and
// written a vector at a time; the ragged edges (fewer than a vector's width of positions or
// channels) go one value at a time. Blocks of positions run in parallel. On the reference path
// (core/kernel_path.h) both run core/reference/token_rows.h's plain loops instead.
#pragma once
#include <cstdint>

namespace mg::kernels {

// t[s, rows[p], ch] = x[s, ch, p]
template <typename T> void to_token_rows(const T* x, int64_t b, int64_t c, int64_t hw, const int64_t* rows, T* t);
// x[s, ch, p] = t[s, rows[p], ch]
template <typename T> void from_token_rows(const T* t, int64_t b, int64_t c, int64_t hw, const int64_t* rows, T* x);

}  // namespace mg::kernels
