// The multi-head attention core as its definition: per group of n tokens and per head, the scores,
// their softmax and the weighted sum of the values, each entry one sum in double; single-threaded,
// no transposed copies, no register blocks. core/kernels/attention.h runs these on the reference
// path (MAXGRAD_KERNELS=reference) and the tests hold the fast loops to them.
//
// Shapes (AttnGeom: n tokens, heads, hd channels a head, C = heads * hd): qkv (groups, n, 3C) holds
// q, k, v side by side in each token's row; head h's q is columns [h hd, (h + 1) hd), its k the same
// columns + C, its v + 2C. bias (heads, n, n); out (groups, n, C), head h in its columns h hd...;
// probs (groups, heads, n, n) is P, kept for the backward. Per group and head:
//   S = q k^T * scale + bias_h      (n, n)
//   P = softmax(S) by rows          (each row's max subtracted before exp)
//   O = P v                         (n, hd)
#pragma once
#include "maxgrad/core/kernels/attention.h"

namespace mg::reference {

using kernels::AttnGeom;

template <typename T> void multi_head_attention_forward(const T* qkv, const T* bias, int64_t groups, const AttnGeom& g,
                                                        double scale, T* out, T* probs);

// gout (groups, n, C) is dL/dO. Writes gqkv (groups, n, 3C) and gbias (heads, n, n), the sum of dS over
// the groups. Per group and head:
//   dV = P^T dO,   dP = dO v^T,   dS = P * (dP - rowsum(dP * P)),   dq = dS k * scale,   dk = dS^T q * scale
template <typename T> void multi_head_attention_backward(const T* qkv, const T* probs, const T* gout, int64_t groups,
                                                         const AttnGeom& g, double scale, T* gqkv, T* gbias);

}  // namespace mg::reference
