// Every differentiable op, with PyTorch's names and argument order. Each is defined, forward and
// backward together, in the file of core/ops/ named in its group's comment.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/tensor.h"

namespace mg {

class Generator;

// ---- core/ops/arith.cpp: elementwise arithmetic with NumPy/PyTorch broadcasting ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor neg(const Tensor& a);
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return add(a, -b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator*(double b, const Tensor& a) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return mul(a, 1.0 / b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// ---- core/ops/unary.cpp: elementwise functions ----
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor gelu(const Tensor& x);  // exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))

// ---- core/ops/reduce.cpp ----
Tensor sum(const Tensor& x);  // all elements -> shape []
Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim = false);
// correction 1 = unbiased (PyTorch's default), 0 = biased.
Tensor var(const Tensor& x, std::vector<int64_t> dims, int64_t correction = 1, bool keepdim = false);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);     // values; gradient to the first max
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // int64, not differentiable

// ---- core/ops/shape.cpp: differentiable copies and joins (views are Tensor methods) ----
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);

// ---- core/ops/token_rows.cpp ----
// (B, C, H, W) -> (B, H*W, C), the map's position p = h * W + w going to row rows[p] (rows: a
// permutation of 0 .. H*W-1); and back. MaxViT's window and grid partitions are two such orders.
Tensor to_token_rows(const Tensor& x, const std::vector<int64_t>& rows);
Tensor from_token_rows(const Tensor& t, const std::vector<int64_t>& rows, int64_t h, int64_t w);

// ---- core/ops/matmul.cpp ----
// a (..., n, k) @ b (..., k, m) -> (..., n, m), batch dims broadcast; 1-D operands as in PyTorch.
Tensor matmul(const Tensor& a, const Tensor& b);
// x (..., in) , weight (out, in), bias (out) or undefined -> (..., out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- core/ops/conv.cpp ----
// x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O) or undefined -> (N, O, Ho, Wo)
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              int64_t padding = 0, int64_t groups = 1);

// ---- core/ops/pool.cpp ----
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0, bool count_include_pad = true);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t output_size);  // output_size 1 only

// ---- core/ops/softmax.cpp ----
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- core/ops/loss.cpp ----
// torch.nn.functional.cross_entropy (reduction "mean"); the target's dtype says which kind it is:
//   int64 (N) class indices in [0, K)      logits (N, K) -> mean loss, shape []
//   float (N, K) class probabilities       (mixup / cutmix targets, data/mixup.h), converted to the
//                                          logits' dtype; not differentiated (no gradient reaches it)
// label_smoothing e mixes either target with the uniform distribution: q = (1 - e) target + e / K.
// A one-hot probability target gives exactly the class-index loss and gradient.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0);

// ---- core/ops/layer_norm.cpp ----
// Normalises over the last dim; weight/bias (C) or undefined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

// ---- core/ops/batch_norm.cpp ----
// x (N, C, ...). training: normalise with the batch mean and biased variance, and, when
// running_mean/var are given, update them with batch_norm_update_stats (PyTorch's convention).
// Not training: normalise with running_mean/var.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps);
// gelu(batch_norm(...)) in one op (MaxViT's Conv2dNormActivation): the normalised tensor is never
// stored, and the backward recomputes it from x.
Tensor batch_norm_gelu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum, double eps);
// running = (1 - momentum) * running + momentum * batch_stat; running_var takes the unbiased
// variance (count/(count-1) times the biased one). Plain loops, meant to be stepped through.
void batch_norm_update_stats(Tensor& running_mean, Tensor& running_var, const Tensor& batch_mean,
                             const Tensor& batch_var_biased, int64_t count, double momentum);

// ---- core/ops/attention.cpp ----
// Multi-head self-attention, fused: qkv (..., n, 3C) holds q, k, v side by side (to_qkv's output),
// bias (heads, n, n) is added to each head's scores. Per head (hd = C / heads channels):
// softmax(q (k * scale)^T + bias) v, the heads' outputs side by side -> (..., n, C).
Tensor multi_head_attention(const Tensor& qkv, const Tensor& bias, int64_t heads, double scale);

// ---- core/ops/dropout.cpp ----
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);
// Stochastic depth, "row" mode: each sample's whole tensor kept with prob 1-p and scaled by 1/(1-p).
Tensor drop_path(const Tensor& x, double p, bool training, Generator& gen);
// x + drop_path(f, ...), one pass (a residual connection with stochastic depth); the same mask draws.
Tensor add_drop_path(const Tensor& x, const Tensor& f, double p, bool training, Generator& gen);

// ---- core/ops/index.cpp ----
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);  // index: 1-D int64
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);        // index: int64, same ndim

}  // namespace mg
