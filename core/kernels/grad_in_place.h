// Where a backward writes an input gradient the shape of its incoming gradient g: over g itself when
// the engine holds g alone (mg::sole_owner, core/autograd.h) and g is contiguous, else a new tensor.
// No new buffer, and no memory traffic fetching one to write into. Only for kernels that read each
// value of g before they write the same position of the result.
#pragma once
#include "maxgrad/core/autograd.h"
#include "maxgrad/core/tensor.h"

namespace mg::kernels {

struct GradInPlace {
  Tensor g;   // the incoming gradient, contiguous
  Tensor gx;  // g itself, or a new tensor of its shape and dtype
};

inline GradInPlace grad_in_place(const Tensor& g_in) {
  const bool reuse = g_in.is_contiguous() && sole_owner(g_in);  // before `g` below holds it too
  Tensor g = g_in.contiguous();
  Tensor gx = reuse ? g : Tensor::empty(g.shape(), g.dtype());
  return {g, gx};
}

}  // namespace mg::kernels
