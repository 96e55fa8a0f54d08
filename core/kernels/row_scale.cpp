#include "maxgrad/core/kernels/row_scale.h"

#include <algorithm>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/lanes.h"
#include "maxgrad/core/runtime/parallel.h"

namespace mg::kernels {

namespace {
// Rows of length `len` (> 1) when `small` is `shape` with every dim from some k on made 1 (after
// right-aligning): squeeze-excitation's scale (B, C, 1, 1) against its (B, C, H, W) input. 0 if not.
int64_t row_broadcast_len(const Shape& small, const Shape& shape) {
  if (small.size() > shape.size()) return 0;
  const size_t lead = shape.size() - small.size();
  size_t k = shape.size();  // the first of the trailing dims that small has as 1
  while (k > lead && small[k - 1 - lead] == 1) --k;
  int64_t len = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d < k && (d < lead || small[d - lead] != shape[d])) return 0;
    if (d >= k) len *= shape[d];
  }
  return len > 1 ? len : 0;
}

// gx = g * s (one s per row of `len`), gs[r] = sum over the row of g * x; gx may be g itself (a row
// is summed before it is scaled). Each gs[r] is a double sum of the float products in kLanes lanes
// (the order depends on len alone, not on the thread count).
template <typename T>
void row_scale_backward(const T* g, const T* x, const T* sv, int64_t rows, int64_t len, T* gx, T* gs) {
  constexpr int64_t kLanes = 16;
  parallel_for(rows, std::max<int64_t>(1, 16384 / len), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T *gr = g + r * len, *xr = x + r * len;
      if (gs) {  // first: gx may be written over g
        double part[kLanes] = {};
        add_lanes<kLanes>(len, part, [&](int64_t i) { return static_cast<double>(gr[i] * xr[i]); });
        gs[r] = static_cast<T>(combine_lanes<kLanes>(part));
      }
      if (gx) {
        T* out = gx + r * len;
        const T k = sv[r];
        for (int64_t i = 0; i < len; ++i) out[i] = gr[i] * k;
      }
    }
  });
}
}  // namespace

std::optional<std::vector<Tensor>> mul_backward_row_scale(const Tensor& g, const Tensor& a, const Tensor& b) {
  if (use_reference_kernels()) return std::nullopt;
  const bool a_small = a.shape() != g.shape();
  const Tensor& sm = a_small ? a : b;
  const Tensor& big = a_small ? b : a;
  if (big.shape() != g.shape() || !g.is_contiguous() || !big.is_contiguous() || !sm.is_contiguous())
    return std::nullopt;
  const int64_t len = row_broadcast_len(sm.shape(), g.shape());
  if (len == 0) return std::nullopt;
  Tensor g_big = !big.requires_grad() ? Tensor() : sole_owner(g) ? g : Tensor::empty(g.shape(), g.dtype());
  Tensor g_sm = sm.requires_grad() ? Tensor::empty(sm.shape(), g.dtype()) : Tensor();
  MG_DISPATCH_FLOAT(g.dtype(), "mul", [&] {
    row_scale_backward<scalar_t>(g.data<scalar_t>(), big.data<scalar_t>(), sm.data<scalar_t>(), sm.numel(), len,
                                 g_big.defined() ? g_big.data<scalar_t>() : nullptr,
                                 g_sm.defined() ? g_sm.data<scalar_t>() : nullptr);
  });
  return a_small ? std::vector<Tensor>{g_sm, g_big} : std::vector<Tensor>{g_big, g_sm};
}

}  // namespace mg::kernels
