#include "maxgrad/core/kernels/dropout.h"

#include <algorithm>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/reference/dropout.h"

namespace mg::kernels {

Tensor add_masked_per_sample(const Tensor& x, const Tensor& f, const Tensor& mask) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const int64_t per_sample = x.numel() / x.size(0);
  MG_DISPATCH_FLOAT(x.dtype(), "add_drop_path", [&] {
    const scalar_t *px = x.data<scalar_t>(), *pf = f.data<scalar_t>(), *pm = mask.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    if (use_reference_kernels()) return reference::add_masked_per_sample(px, pf, pm, x.size(0), per_sample, py);
    parallel_for(x.numel(), 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1;) {  // runs within one sample: one mask value each
        const int64_t end = std::min(i1, (i / per_sample + 1) * per_sample);
        const scalar_t m = pm[i / per_sample];
        for (; i < end; ++i) py[i] = px[i] + m * pf[i];
      }
    });
  });
  return y;
}

}  // namespace mg::kernels
