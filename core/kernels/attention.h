// Multi-head attention over one group of n tokens, all heads, straight from the fused qkv rows
// (core/ops/attention.cpp runs the groups in parallel).
//
// Per head h, with q, k, v the head's hd columns of qkv's three parts:
//   S = q (k * scale)^T + bias_h,   P = softmax(S) by rows,   O = P v
// MaxViT's groups are small (16 tokens, 32 channels a head), so these are 16 x 16 x 32 products:
// a BLAS call per product costs more than the arithmetic. The loops here keep every innermost loop
// a contiguous multiply-add over a row (of n or hd values), which the compiler vectorises; the
// operands that would be read by column are first copied transposed into a small scratch.
#pragma once
#include <cstdint>

namespace mg::kernels {

struct AttnGeom {
  int64_t n, heads, hd;  // tokens per group, heads, channels per head (C = heads * hd)
};

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
