// Reductions. sum is the one kernel (core/kernels/reduce.h: each output summed in double, in a
// fixed order, so any thread count gives the same bits); mean and var are written with sum and
// the elementwise ops, so their gradients come from those; max is argmax then gather.
#include "maxgrad/core/kernels/reduce.h"

#include <numeric>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/ops.h"

namespace mg {

namespace {

std::vector<bool> reduced_mask(const Tensor& x, std::vector<int64_t>& dims, const char* op) {
  std::vector<bool> red(x.dim(), false);
  for (int64_t& d : dims) {
    d = wrap_dim(d, x.dim(), op);
    MG_CHECK(!red[d], op, "dim ", d, " appears twice in the reduction dims");
    red[d] = true;
  }
  return red;
}

Shape reduced_shape(const Tensor& x, const std::vector<bool>& red, bool keepdim) {
  Shape s;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (!red[d])
      s.push_back(x.size(d));
    else if (keepdim)
      s.push_back(1);
  }
  return s;
}

}  // namespace

// out = sum over dims;  dx = g broadcast back over the summed dims
Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  std::vector<bool> red = reduced_mask(x, dims, "sum");
  Shape out_shape = reduced_shape(x, red, keepdim);
  Tensor out = kernels::sum(x, red, out_shape);
  Shape in_shape = x.shape(), kept = reduced_shape(x, red, true);
  // The gradient is g broadcast back over the summed dims: an expanded view (stride 0), not a
  // copy; whatever consumes it reads it through its strides.
  record("sum", out, {x},
         [in_shape, kept](const Tensor& g) { return std::vector<Tensor>{g.reshape(kept).expand(in_shape)}; });
  return out;
}

Tensor sum(const Tensor& x) {
  std::vector<int64_t> all(x.dim());
  std::iota(all.begin(), all.end(), 0);
  return sum(x, all, false);
}

// out = sum / n
Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  std::vector<bool> red = reduced_mask(x, dims, "mean");
  int64_t n = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (red[d]) n *= x.size(d);
  MG_CHECK(n > 0, "mean", "mean over an empty dimension of ", x.info());
  return mul(sum(x, dims, keepdim), 1.0 / static_cast<double>(n));
}

Tensor mean(const Tensor& x) {
  std::vector<int64_t> all(x.dim());
  std::iota(all.begin(), all.end(), 0);
  return mean(x, all, false);
}

// Two-pass variance, written with differentiable ops so its gradient comes for free:
// var = sum((x - mean)^2) / (n - correction)
Tensor var(const Tensor& x, std::vector<int64_t> dims, int64_t correction, bool keepdim) {
  std::vector<int64_t> d = dims;
  std::vector<bool> red = reduced_mask(x, d, "var");
  int64_t n = 1;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (red[i]) n *= x.size(i);
  MG_CHECK(n - correction > 0, "var", "needs more than ", correction, " elements per reduction, got ", n, " from ",
           x.info());
  Tensor centred = sub(x, mean(x, d, true));
  return mul(sum(mul(centred, centred), d, keepdim), 1.0 / static_cast<double>(n - correction));
}

// Index of the first maximum along dim (int64).
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  dim = wrap_dim(dim, x.dim(), "argmax");
  MG_CHECK(x.size(dim) > 0, "argmax", "empty dimension ", dim, " in ", x.info());
  Tensor idx = kernels::argmax(x, dim);
  return keepdim ? idx.unsqueeze(dim) : idx;
}

// values of the max along dim; the gradient goes to the first maximal element (as PyTorch's max(dim))
Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor idx = argmax(x, dim, true);
  Tensor out = gather(x, dim, idx);
  return keepdim ? out : out.squeeze(wrap_dim(dim, x.dim(), "max"));
}

}  // namespace mg
