#include "maxgrad/core/reference/dropout.h"

namespace mg::reference {

template <typename T>
void add_masked_per_sample(const T* x, const T* f, const T* mask, int64_t samples, int64_t per_sample, T* y) {
  for (int64_t s = 0; s < samples; ++s)
    for (int64_t i = 0; i < per_sample; ++i) {
      const int64_t at = s * per_sample + i;
      y[at] = x[at] + mask[s] * f[at];
    }
}

template void add_masked_per_sample<float>(const float*, const float*, const float*, int64_t, int64_t, float*);
template void add_masked_per_sample<double>(const double*, const double*, const double*, int64_t, int64_t, double*);

}  // namespace mg::reference
