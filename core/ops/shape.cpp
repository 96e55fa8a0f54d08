// Joining tensors. cat copies each input into its slice of the output; backward hands each input
// the matching slice of the gradient (a narrow view).
#include "maxgrad/core/autograd.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/core/runtime/profiler.h"

namespace mg {

// out = [x0; x1; ...] along dim;  dx_i = g.narrow(dim, offset_i, size_i)
Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  MG_CHECK(!xs.empty(), "cat", "needs at least one tensor");
  const Tensor& first = xs[0];
  dim = wrap_dim(dim, first.dim(), "cat");
  Shape os = first.shape();
  os[dim] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    MG_CHECK(t.dtype() == first.dtype(), "cat", "tensor ", i, " is ", t.info(), " but tensor 0 is ", first.info());
    MG_CHECK(t.dim() == first.dim(), "cat", "tensor ", i, " ", t.info(), " has a different number of dims from ",
             first.info());
    for (int64_t d = 0; d < t.dim(); ++d)
      MG_CHECK(d == dim || t.size(d) == first.size(d), "cat", "tensor ", i, " ", t.info(), " differs from ",
               first.info(), " in dim ", d, " (only dim ", dim, " may differ)");
    os[dim] += t.size(dim);
  }
  Tensor out = Tensor::empty(os, first.dtype());
  std::vector<int64_t> sizes;
  {
    NoGradGuard no_grad;
    profiler::PartOfOp part;  // the copies are cat's time
    int64_t off = 0;
    for (const Tensor& t : xs) {
      out.narrow(dim, off, t.size(dim)).copy_(t.detach());
      sizes.push_back(t.size(dim));
      off += t.size(dim);
    }
  }
  record("cat", out, xs, [sizes, dim](const Tensor& g) {
    std::vector<Tensor> gs;
    int64_t off = 0;
    for (int64_t s : sizes) gs.push_back(g.narrow(dim, off, s)), off += s;
    return gs;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  MG_CHECK(!xs.empty(), "stack", "needs at least one tensor");
  dim = wrap_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> us;
  for (size_t i = 0; i < xs.size(); ++i) {
    MG_CHECK(xs[i].shape() == xs[0].shape(), "stack", "tensor ", i, " ", xs[i].info(), " differs in shape from ",
             xs[0].info(), " (stack needs equal shapes)");
    us.push_back(xs[i].unsqueeze(dim));
  }
  return cat(us, dim);
}

}  // namespace mg
