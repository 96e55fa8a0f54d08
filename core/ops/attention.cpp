// Multi-head self-attention with an additive bias per head, fused: MaxViT's attention between its
// to_qkv and merge layers in one op. It computes exactly this composition of ops (which
// tests/test_kernels.cpp holds it to, values and gradients):
//   q, k, v = qkv.chunk(3, -1), each reshaped to (..., n, heads, hd) and permuted to (..., heads, n, hd)
//   P = softmax(q @ (k * scale)^T + bias, -1),   out = (P @ v) permuted back and reshaped to (..., n, C)
// Composed, those ops copy q, k, v and the output between layouts, and their backwards make a
// zero-filled (..., n, 3C) gradient for each of the three chunks; fused, q, k and v are read in
// place from qkv's rows, the output is written in place, and the backward writes one dqkv. Only P
// is kept for the backward. The loops are in core/kernels/attention.cpp (groups in parallel).
#include "maxgrad/core/kernels/attention.h"

#include <vector>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/ops.h"

namespace mg {

Tensor multi_head_attention(const Tensor& qkv_in, const Tensor& bias_in, int64_t heads, double scale) {
  MG_CHECK(qkv_in.dim() >= 2, "multi_head_attention", "qkv must be (..., tokens, 3 * channels), got ", qkv_in.info());
  MG_CHECK(heads >= 1 && qkv_in.size(-1) % (3 * heads) == 0, "multi_head_attention", "qkv ", qkv_in.info(),
           ": the last dim must be 3 * channels with channels divisible by heads = ", heads);
  const int64_t n = qkv_in.size(-2), c = qkv_in.size(-1) / 3;
  MG_CHECK(bias_in.dim() == 3 && bias_in.size(0) == heads && bias_in.size(1) == n && bias_in.size(2) == n,
           "multi_head_attention", "bias ", bias_in.info(), " must be (heads, tokens, tokens) = [", heads, ", ", n,
           ", ", n, "] for qkv ", qkv_in.info());
  MG_CHECK(bias_in.dtype() == qkv_in.dtype(), "multi_head_attention", "dtype mismatch: qkv ", qkv_in.info(), ", bias ",
           bias_in.info());
  // qkv (groups, n, 3C) with groups = the product of the leading dims; bias (heads, n, n);
  // out (groups, n, C) shaped as qkv with C last; P (groups, heads, n, n) kept for the backward
  Tensor qkv = qkv_in.detach().contiguous(), bias = bias_in.detach().contiguous();
  const kernels::AttnGeom geom{n, heads, c / heads};
  const int64_t groups = n > 0 ? qkv.numel() / (n * 3 * c) : 0;
  Shape out_shape = qkv.shape();
  out_shape.back() = c;
  Tensor out = Tensor::empty(out_shape, qkv.dtype());
  Tensor probs = Tensor::empty({groups, heads, n, n}, qkv.dtype());
  MG_DISPATCH_FLOAT(qkv.dtype(), "multi_head_attention", [&] {
    using T = scalar_t;
    kernels::multi_head_attention_forward(qkv.data<T>(), bias.data<T>(), groups, geom, scale, out.data<T>(),
                                          probs.data<T>());
  });

  // g (groups, n, C) -> gqkv (groups, n, 3C): dV = P^T g, dP = g v^T, dS = P * (dP - rowsum(dP * P)),
  // dq = dS k * scale, dk = dS^T q * scale; gbias (heads, n, n) = dS summed over the groups
  record("multi_head_attention", out, {qkv_in, bias_in},
         [qkv, probs, geom, scale, groups](const Tensor& g_in) {
           Tensor g = g_in.contiguous();
           Tensor gqkv = Tensor::empty(qkv.shape(), qkv.dtype());
           Tensor gbias = Tensor::empty({geom.heads, geom.n, geom.n}, qkv.dtype());
           MG_DISPATCH_FLOAT(qkv.dtype(), "multi_head_attention backward", [&] {
             using T = scalar_t;
             kernels::multi_head_attention_backward(qkv.data<T>(), probs.data<T>(), g.data<T>(), groups, geom, scale,
                                                    gqkv.data<T>(), gbias.data<T>());
           });
           return std::vector<Tensor>{gqkv, gbias};
         },
         {qkv});
  return out;
}

}  // namespace mg
