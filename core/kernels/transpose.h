// A matrix copied transposed: out (cols, rows) from in (rows, cols). gemm_small_k reads op(B) by rows,
// so a linear layer's weight (out_features, in_features), which the product uses transposed, is first
// copied this way round. Blocks of one vector's width square (16 x 16 floats with AVX-512) are
// transposed in registers (simd.h's vtranspose), so every row is read and written a vector at a
// time; the ragged edges go one value at a time. A plain copy: the bits of every value are kept.
#pragma once
#include <cstdint>

namespace mg::kernels {

// out[p * ldo + j] = in[j * ldi + p] for j < rows, p < cols (in: rows x cols, row stride ldi)
template <typename T> void transpose(const T* in, int64_t ldi, int64_t rows, int64_t cols, T* out, int64_t ldo);

}  // namespace mg::kernels
