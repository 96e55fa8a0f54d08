#include "maxgrad/core/kernels/transpose.h"

#include "maxgrad/core/kernels/simd.h"

namespace mg::kernels {

template <typename T> void transpose(const T* in, int64_t ldi, int64_t rows, int64_t cols, T* out, int64_t ldo) {
  constexpr int64_t L = kVecLanes<T>;
  const int64_t whole_rows = rows / L * L, whole_cols = cols / L * L;
  for (int64_t j0 = 0; j0 < whole_rows; j0 += L) {
    for (int64_t p0 = 0; p0 < whole_cols; p0 += L) {  // an L x L block: rows j0.., columns p0..
      Vec<T> r[L];
      for (int64_t j = 0; j < L; ++j) r[j] = vload(in + (j0 + j) * ldi + p0);
      vtranspose<T>(r);  // r[p] = column p0 + p of the block
      for (int64_t p = 0; p < L; ++p) vstore(out + (p0 + p) * ldo + j0, r[p]);
    }
    for (int64_t j = j0; j < j0 + L; ++j)  // the block row's last columns, fewer than L
      for (int64_t p = whole_cols; p < cols; ++p) out[p * ldo + j] = in[j * ldi + p];
  }
  for (int64_t j = whole_rows; j < rows; ++j)  // the last rows, fewer than L
    for (int64_t p = 0; p < cols; ++p) out[p * ldo + j] = in[j * ldi + p];
}

template void transpose<float>(const float*, int64_t, int64_t, int64_t, float*, int64_t);
template void transpose<double>(const double*, int64_t, int64_t, int64_t, double*, int64_t);

}  // namespace mg::kernels
