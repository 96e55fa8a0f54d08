// Reference loop of add_drop_path's fused residual.
#pragma once
#include <cstdint>

namespace mg::reference {

// y[s, i] = x[s, i] + mask[s] * f[s, i] for samples s of per_sample values, contiguous
template <typename T>
void add_masked_per_sample(const T* x, const T* f, const T* mask, int64_t samples, int64_t per_sample, T* y);

}  // namespace mg::reference
