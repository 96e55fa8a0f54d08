// The backward of a product y = a * b in which one operand is a value per row of the other:
// squeeze-excitation's scale, (B, C, 1, 1) against its (B, C, H, W) input.
#pragma once
#include <optional>
#include <vector>

#include "maxgrad/core/tensor.h"

namespace mg::kernels {

// {da, db} for y = a * b when one operand is the other with every dim from some k on made 1 (rows of
// length > 1), g and both operands contiguous: gx = g * s for the big operand x, and gs[r] = the sum
// over row r of g * x for the scale s, in one pass over g and x instead of a product written out
// whole and then summed (gx written over g when the engine holds g alone, core/autograd.h). A
// gradient is left undefined when its operand does not require grad. nullopt when the shapes do not
// fit, and always on the reference path: then the op's general formula runs.
std::optional<std::vector<Tensor>> mul_backward_row_scale(const Tensor& g, const Tensor& a, const Tensor& b);

}  // namespace mg::kernels
