// Multi-head self-attention with an additive bias per head, fused: MaxViT's attention between its
// to_qkv and merge layers in one op. It computes exactly this composition of ops (which
// tests/test_kernels.cpp holds it to, values and gradients):
//   q, k, v = qkv.chunk(3, -1), each reshaped to (..., n, heads, hd) and permuted to (..., heads, n, hd)
//   P = softmax(q @ (k * scale)^T + bias, -1),   out = (P @ v) permuted back and reshaped to (..., n, C)
// Composed, those ops copy q, k, v and the output between layouts, and their backwards make a
// zero-filled (..., n, 3C) gradient for each of the three chunks; fused, q, k and v are read in
// place from qkv's rows, the output is written in place, and the backward writes one dqkv. Only P
// is kept for the backward. The loops are in core/kernels/attention.cpp.
#include "core/kernels/attention.h"

#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/parallel.h"

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
  Tensor qkv = qkv_in.detach().contiguous(), bias = bias_in.detach().contiguous();
  const kernels::AttnGeom geom{n, heads, c / heads};
  const int64_t groups = n > 0 ? qkv.numel() / (n * 3 * c) : 0;
  Shape out_shape = qkv.shape();
  out_shape.back() = c;
  Tensor out = Tensor::empty(out_shape, qkv.dtype());
  Tensor probs = Tensor::empty({groups, heads, n, n}, qkv.dtype());
  // Groups per task: about 2K scores, so a task is worth scheduling; fixed by the sizes (the
  // bias gradient is summed per task, then over the tasks in order).
  const int64_t grain = std::max<int64_t>(1, 2048 / std::max<int64_t>(heads * n * n, 1));
  MG_DISPATCH_FLOAT(qkv.dtype(), "multi_head_attention", [&] {
    using T = scalar_t;
    const T *pq = qkv.data<T>(), *pb = bias.data<T>();
    T *po = out.data<T>(), *pp = probs.data<T>();
    parallel_for(groups, grain, [&](int64_t g0, int64_t g1) {
      std::vector<T> scratch(static_cast<size_t>(kernels::attention_scratch_size(geom)));
      for (int64_t gi = g0; gi < g1; ++gi)
        kernels::attention_forward<T>(pq + gi * n * 3 * c, pb, geom, static_cast<T>(scale), po + gi * n * c,
                                      pp + gi * heads * n * n, scratch.data());
    });
  });

  record("multi_head_attention", out, {qkv_in, bias_in},
         [qkv, probs, geom, scale, groups, grain](const Tensor& g_in) {
           Tensor g = g_in.contiguous();
           const int64_t n = geom.n, c = geom.heads * geom.hd, nb = geom.heads * n * n;
           const int64_t parts = (groups + grain - 1) / grain;
           Tensor gqkv = Tensor::empty(qkv.shape(), qkv.dtype());
           Tensor gbias = Tensor::empty({geom.heads, n, n}, qkv.dtype());
           MG_DISPATCH_FLOAT(qkv.dtype(), "multi_head_attention backward", [&] {
             using T = scalar_t;
             const T *pq = qkv.data<T>(), *pp = probs.data<T>(), *pg = g.data<T>();
             T* pgq = gqkv.data<T>();
             std::vector<T> partial(static_cast<size_t>(parts * nb), T(0));  // the bias gradient of each task
             parallel_for(groups, grain, [&](int64_t g0, int64_t g1) {
               std::vector<T> scratch(static_cast<size_t>(kernels::attention_scratch_size(geom)));
               T* gb = partial.data() + (g0 / grain) * nb;
               for (int64_t gi = g0; gi < g1; ++gi)
                 kernels::attention_backward<T>(pq + gi * n * 3 * c, pp + gi * nb, pg + gi * n * c, geom,
                                                static_cast<T>(scale), pgq + gi * n * 3 * c, gb, scratch.data());
             });
             T* out = gbias.data<T>();
             for (int64_t i = 0; i < nb; ++i) {
               T s = 0;
               for (int64_t p = 0; p < parts; ++p) s += partial[p * nb + i];
               out[i] = s;
             }
           });
           return std::vector<Tensor>{gqkv, gbias};
         },
         {qkv});
  return out;
}

}  // namespace mg
