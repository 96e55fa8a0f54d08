// The token-row gathers as their definition: one value at a time, in index order; single-threaded,
// no blocks, no transposes. core/kernels/token_rows.h runs these on the reference path
// (MAXGRAD_KERNELS=reference) and the tests hold the fast copies to them.
//
// Shapes: a feature map x (b, c, hw), position p = h * W + w, and rows of tokens t (b, hw, c);
// rows (hw) is a permutation of 0..hw-1 that sends position p to row rows[p] (MaxViT's window and
// grid partitions are two such orders). Each copy is the other's inverse (and its backward).
#pragma once
#include <cstdint>

namespace mg::reference {

// t[s, rows[p], ch] = x[s, ch, p]
template <typename T> void to_token_rows(const T* x, int64_t b, int64_t c, int64_t hw, const int64_t* rows, T* t);
// x[s, ch, p] = t[s, rows[p], ch]
template <typename T> void from_token_rows(const T* t, int64_t b, int64_t c, int64_t hw, const int64_t* rows, T* x);

}  // namespace mg::reference
