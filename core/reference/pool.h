// avg_pool2d as its definition: every window's values summed (in double) and divided, and the
// backward spreading each output's gradient over its window. Single-threaded plain loops; the fast
// passes of core/kernels/pool.h are held to them.
//
// Shapes: x (planes, h, w) -> y (planes, ho, wo), planes = n * c, geometry in PoolGeom (window k,
// stride s, padding p). Output (oh, ow)'s window covers rows oh * s - p .. oh * s - p + k - 1 (and
// columns likewise), clipped to the padded input; its divisor counts the padding in it when
// include_pad is set (PyTorch's count_include_pad), else only the inputs.
#pragma once
#include <cstdint>

#include "maxgrad/core/kernels/pool.h"

namespace mg::reference {

using kernels::PoolGeom;

// y (planes, ho, wo) = sum of x over the window / divisor
template <typename T> void avg_pool2d_forward(const PoolGeom& g, int64_t planes, const T* x, T* y);
// gx (planes, h, w) = sum over the windows that hold (ih, iw) of gy (planes, ho, wo) / divisor
template <typename T> void avg_pool2d_backward(const PoolGeom& g, int64_t planes, const T* gy, T* gx);

}  // namespace mg::reference
