#include "maxgrad/core/reference/elementwise.h"

namespace mg::reference {

void copy(const Tensor& dst, const Tensor& src_) {
  Tensor src = src_.shape() == dst.shape() ? src_ : src_.detach().expand(dst.shape());
  MG_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using D = scalar_t;
    D* d = dst.data<D>();
    MG_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      const scalar_t* s = src.data<scalar_t>();
      for (int64_t i = 0; i < dst.numel(); ++i)
        d[offset_of(i, dst.shape(), dst.strides())] = static_cast<D>(s[offset_of(i, src.shape(), src.strides())]);
    });
  });
}

void fill(const Tensor& dst, double v) {
  MG_DISPATCH_ALL(dst.dtype(), "fill_", [&] {
    scalar_t* d = dst.data<scalar_t>();
    for (int64_t i = 0; i < dst.numel(); ++i) d[offset_of(i, dst.shape(), dst.strides())] = static_cast<scalar_t>(v);
  });
}

void add_(const Tensor& dst, const Tensor& src, double alpha) {
  MG_DISPATCH_FLOAT(dst.dtype(), "add_", [&] {
    scalar_t* d = dst.data<scalar_t>();
    const scalar_t* s = src.data<scalar_t>();
    const scalar_t a = static_cast<scalar_t>(alpha);
    for (int64_t i = 0; i < dst.numel(); ++i)
      d[offset_of(i, dst.shape(), dst.strides())] += a * s[offset_of(i, src.shape(), src.strides())];
  });
}

void mul_(const Tensor& dst, double v) {
  MG_DISPATCH_FLOAT(dst.dtype(), "mul_", [&] {
    scalar_t* d = dst.data<scalar_t>();
    const scalar_t x = static_cast<scalar_t>(v);
    for (int64_t i = 0; i < dst.numel(); ++i) d[offset_of(i, dst.shape(), dst.strides())] *= x;
  });
}

}  // namespace mg::reference
