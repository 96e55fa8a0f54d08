// matmul and linear: one GEMM per matrix (core/kernels/matmul.h), and products again for the
// gradients.
#include "maxgrad/core/kernels/matmul.h"

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/ops.h"

namespace mg {

// out = a @ b;  da = g @ b^T, db = a^T @ g (each summed over the batch dims it was broadcast in)
Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  MG_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul", "both operands need at least 1 dim, got ", a_in.info(),
           " and ", b_in.info());
  MG_CHECK(a_in.dtype() == b_in.dtype(), "matmul", "dtype mismatch: ", a_in.info(), " and ", b_in.info());
  // 1-D operands as in PyTorch: a vector on the left is a row, on the right a column; removed after.
  Tensor a = a_in.dim() == 1 ? a_in.unsqueeze(0) : a_in;
  Tensor b = b_in.dim() == 1 ? b_in.unsqueeze(1) : b_in;
  MG_CHECK(a.size(-1) == b.size(-2), "matmul", "inner dimensions differ: ", a_in.info(), " @ ", b_in.info(),
           " (a's last dim ", a.size(-1), " must equal b's second-to-last dim ", b.size(-2), ")");
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {a.size(-2), a.size(-1)});
  sb.insert(sb.end(), {b.size(-2), b.size(-1)});
  so.insert(so.end(), {a.size(-2), b.size(-1)});
  Tensor out = Tensor::empty(so, a.dtype());
  MG_DISPATCH_FLOAT(a.dtype(), "matmul",
                    [&] { kernels::matmul<scalar_t>(a.detach().expand(sa), b.detach().expand(sb), out); });
  record("matmul", out, {a, b},
         [a, b](const Tensor& g) {
           return std::vector<Tensor>{a.requires_grad() ? sum_to(matmul(g, b.transpose(-1, -2)), a.shape()) : Tensor(),
                                      b.requires_grad() ? sum_to(matmul(a.transpose(-1, -2), g), b.shape()) : Tensor()};
         },
         {a, b});
  if (a_in.dim() == 1) out = out.squeeze(-2);
  if (b_in.dim() == 1) out = out.squeeze(-1);
  return out;
}

// out (..., out) = x (..., in) @ weight^T + bias, as one GEMM over all leading dims.
// dx = g @ weight, dweight = g^T @ x (summed over rows), dbias = sum of g over rows.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  MG_CHECK(weight.dim() == 2, "linear", "weight must be (out_features, in_features), got ", weight.info());
  MG_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear", "input ", x.info(), " has ",
           x.dim() ? x.size(-1) : 0, " features but weight ", weight.info(), " expects ", weight.size(1));
  MG_CHECK(x.dtype() == weight.dtype(), "linear", "dtype mismatch: input ", x.info(), ", weight ", weight.info());
  MG_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "linear", "bias ", bias.info(),
           " does not match weight ", weight.info(), " (expected [", weight.size(0), "])");
  MG_CHECK(!bias.defined() || bias.dtype() == x.dtype(), "linear", "dtype mismatch: input ", x.info(), ", bias ",
           bias.info());
  const int64_t in = weight.size(1), outf = weight.size(0);
  // rows from the leading dims, not reshape's -1, which cannot infer a size when in_features is 0
  const int64_t rows = numel_of(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor x2 = x.detach().reshape({rows, in}).contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = outf;
  Tensor out = Tensor::empty(out_shape, x.dtype());
  Tensor w = weight.detach().contiguous(), b = bias.defined() ? bias.detach().contiguous() : Tensor();
  MG_DISPATCH_FLOAT(x.dtype(), "linear", [&] { kernels::linear<scalar_t>(x2, w, b, out); });
  Shape xs = x.shape();
  record("linear", out, {x, weight, bias},
         [x2, weight, bias, xs, rows, outf](const Tensor& g) {
           Tensor g2 = g.reshape({rows, outf});
           return std::vector<Tensor>{matmul(g2, weight).reshape(xs),
                                      weight.requires_grad() ? matmul(g2.transpose(0, 1), x2) : Tensor(),
                                      bias.defined() && bias.requires_grad() ? sum(g2, {0}) : Tensor()};
         },
         {x2, weight});
  return out;
}

}  // namespace mg
