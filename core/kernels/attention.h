// Multi-head attention over groups of n tokens, all heads, straight from the fused qkv rows.
//
// Per head h, with q, k, v the head's hd columns of qkv's three parts:
//   S = q (k * scale)^T + bias_h,   P = softmax(S) by rows,   O = P v
// MaxViT's groups are small (16 tokens, 32 channels a head), so these are 16 x 16 x 32 products:
// a BLAS call per product costs more than the arithmetic. The loops here keep every innermost loop
// a contiguous multiply-add over a row (of n or hd values), which the compiler vectorises; the
// operands that would be read by column are first copied transposed into a small scratch.
//
// core/ops/attention.cpp calls the two multi_head_attention_* entry points, which run the groups in
// parallel, or, on the reference path (core/kernel_path.h), core/reference/attention.h's plain loops.
#pragma once
#include <cstdint>

namespace mg::kernels {

struct AttnGeom {
  int64_t n, heads, hd;  // tokens per group, heads, channels per head (C = heads * hd)
};

// All groups: qkv (groups, n, 3C), bias (heads, n, n), out (groups, n, C), probs (groups, heads, n, n).
template <typename T> void multi_head_attention_forward(const T* qkv, const T* bias, int64_t groups, const AttnGeom& g,
                                                        double scale, T* out, T* probs);
// gout (groups, n, C) -> gqkv (groups, n, 3C), and gbias (heads, n, n) = the sum over groups of dL/dS;
// both written, not accumulated. Per group as attention_backward below.
template <typename T> void multi_head_attention_backward(const T* qkv, const T* probs, const T* gout, int64_t groups,
                                                         const AttnGeom& g, double scale, T* gqkv, T* gbias);

// ---- one group (the building blocks of the two above) ----

int64_t attention_scratch_size(const AttnGeom& g);

// qkv (n, 3C) rows of one group; bias (heads, n, n); out (n, C) rows; probs (heads, n, n) is P,
// kept for the backward.
template <typename T>
void attention_forward(const T* qkv, const T* bias, const AttnGeom& g, T scale, T* out, T* probs, T* scratch);

// gout (n, C): dL/dO. Writes gqkv (n, 3C) and adds dL/dS (the bias gradient) into gbias (heads, n, n).
//   dV = P^T dO,   dP = dO v^T,   dS = P * (dP - rowsum(dP * P)),   dq = dS (k * scale),   dk = scale dS^T q
template <typename T> void attention_backward(const T* qkv, const T* probs, const T* gout, const AttnGeom& g, T scale,
                                              T* gqkv, T* gbias, T* scratch);

}  // namespace mg::kernels
