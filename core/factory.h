// Creating tensors: constant fills, ranges and random draws from an explicit Generator.
#pragma once
#include "maxgrad/core/generator.h"
#include "maxgrad/core/tensor.h"

namespace mg {

Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor arange(int64_t end, DType dtype = DType::Int64);
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::Float32);

Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::Float32);   // U[0, 1)
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::Float32);  // N(0, 1)
Tensor normal(const Shape& shape, double mean, double std, Generator& gen, DType dtype = DType::Float32);
// N(mean, std) restricted to [a, b] by redrawing (PyTorch's trunc_normal_ defaults: a=-2, b=2, absolute).
Tensor trunc_normal(const Shape& shape, double mean, double std, Generator& gen, double a = -2.0, double b = 2.0,
                    DType dtype = DType::Float32);

}  // namespace mg
