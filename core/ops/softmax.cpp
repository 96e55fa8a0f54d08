// softmax and log_softmax along one dim, max-subtracted for stability (m = max x over the dim):
// softmax:              y = e^(x - m) / sum e^(x - m)        dx = y * (g - sum(g * y))
// log_softmax:          y = x - m - log sum e^(x - m)        dx = g - e^y * sum(g)
#include "maxgrad/core/kernels/softmax.h"

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/ops.h"

namespace mg {

namespace {
// The kernels work on the last dim; any other dim is moved there and back (transpose views).
Tensor last_dim_contiguous(const Tensor& x, int64_t dim) { return x.transpose(dim, -1).contiguous(); }

Tensor softmax_impl(const char* name, const Tensor& x, int64_t dim, bool log) {
  dim = wrap_dim(dim, x.dim(), name);
  Tensor y = kernels::softmax_last(last_dim_contiguous(x.detach(), dim), log).transpose(dim, -1).detach();
  Tensor saved = y.detach();  // a second handle: the node must not own the tensor that owns the node
  record(name, y, {x},
         [saved, dim, log](const Tensor& g) {
           Tensor yl = last_dim_contiguous(saved, dim), gl = last_dim_contiguous(g, dim);
           return std::vector<Tensor>{kernels::softmax_backward_last(yl, gl, log).transpose(dim, -1).contiguous()};
         },
         {saved});
  return y;
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl("log_softmax", x, dim, true); }

}  // namespace mg
