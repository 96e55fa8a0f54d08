// Tensor basics: creation, metadata, element access, copies and in-place writes, printing.
// The views (reshape, permute, ...) and their gradients are in core/ops/views.cpp.
#include "maxgrad/core/tensor.h"

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <sstream>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/factory.h"
#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/loops.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/core/reference/elementwise.h"

namespace mg {

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    st[d] = s;
    s *= std::max<int64_t>(shape[d], 1);
  }
  return st;
}

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

int64_t wrap_dim(int64_t d, int64_t ndim, const char* op) {
  // PyTorch lets some ops name dim 0 or -1 of a 0-d tensor, but every caller here goes on to index
  // the shape at the wrapped dim, which a 0-d tensor does not have: refuse instead of reading past it.
  MG_CHECK(ndim > 0, op, "dimension ", d,
           " is out of range for a tensor with 0 dims (a scalar has no dims; "
           "reshape it to [1] first)");
  MG_CHECK(d >= -ndim && d < ndim, op, "dimension ", d, " is out of range for a tensor with ", ndim,
           " dims (expected a dim in [", -ndim, ", ", ndim - 1, "])");
  return d < 0 ? d + ndim : d;
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  // The strides are products of the dims (a 0 counting as 1) and the storage is numel * itemsize
  // bytes: a shape from a file or a flag must not make either wrap around (and allocate too little).
  int64_t span = 1;
  for (int64_t s : shape) {
    MG_CHECK(s >= 0, "empty", "negative dimension in shape ", mg::shape_str(shape));
    MG_CHECK(!__builtin_mul_overflow(span, std::max<int64_t>(s, 1), &span) &&
                 span <= PTRDIFF_MAX / static_cast<int64_t>(itemsize(dtype)),
             "empty", "shape ", mg::shape_str(shape), " is too large to address (over 2^63 bytes)");
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(numel_of(shape)) * itemsize(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(impl);
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  MG_CHECK(static_cast<int64_t>(values.size()) == numel_of(shape), "from_vector", values.size(),
           " values do not fill shape ", mg::shape_str(shape), " (", numel_of(shape), " elements)");
  Tensor t = empty(shape, dtype);
  MG_DISPATCH_ALL(dtype, "from_vector", [&] {
    scalar_t* p = t.data<scalar_t>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<scalar_t>(values[i]);
  });
  return t;
}

Tensor Tensor::from_vector_i64(const std::vector<int64_t>& values, const Shape& shape) {
  MG_CHECK(static_cast<int64_t>(values.size()) == numel_of(shape), "from_vector_i64", values.size(),
           " values do not fill shape ", mg::shape_str(shape));
  Tensor t = empty(shape, DType::Int64);
  std::copy(values.begin(), values.end(), t.data<int64_t>());
  return t;
}

Tensor Tensor::scalar(double v, DType dtype) { return from_vector({v}, {}, dtype); }

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::numel() const { return numel_of(shape()); }

bool Tensor::is_contiguous() const {
  int64_t s = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape()[d] == 1) continue;
    if (strides()[d] != s) return false;
    s *= shape()[d];
  }
  return true;
}

std::string Tensor::info() const {
  if (!defined()) return "undefined";
  return cat(dtype_name(dtype()), shape_str());
}

void Tensor::check_type(DType t) const {
  MG_CHECK(dtype() == t, "Tensor::data", "tensor is ", dtype_name(dtype()), ", accessed as ", dtype_name(t));
}

double Tensor::item() const {
  MG_CHECK(numel() == 1, "item", "needs a tensor with exactly one element, got shape ", shape_str());
  return at(Shape(dim(), 0));
}

double Tensor::at(const Shape& index) const {
  MG_CHECK(static_cast<int64_t>(index.size()) == dim(), "at", "index ", mg::shape_str(index), " has ", index.size(),
           " entries for a tensor of shape ", shape_str());
  int64_t off = 0;
  for (int64_t d = 0; d < dim(); ++d) {
    MG_CHECK(index[d] >= 0 && index[d] < shape()[d], "at", "index ", mg::shape_str(index),
             " is out of range for shape ", shape_str());
    off += index[d] * strides()[d];
  }
  return MG_DISPATCH_ALL(dtype(), "at", [&] { return static_cast<double>(data<scalar_t>()[off]); });
}

std::vector<double> Tensor::to_vector() const {
  Tensor c = contiguous();
  std::vector<double> v(static_cast<size_t>(numel()));
  MG_DISPATCH_ALL(dtype(), "to_vector", [&] {
    const scalar_t* p = c.data<scalar_t>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(p[i]);
  });
  return v;
}

// ---- element loops of the copies and in-place writes (on the reference path: core/reference/elementwise.h) ----

namespace {
// dst[i] = src[i] for every element, with broadcasting of src and dtype conversion.
void copy_elements(const Tensor& dst, const Tensor& src) {
  if (use_reference_kernels()) return reference::copy(dst, src);
  Tensor s = src.shape() == dst.shape() ? src : src.expand(dst.shape());
  MG_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using D = scalar_t;
    D* dp = dst.data<D>();
    MG_DISPATCH_ALL(s.dtype(), "copy_", [&] {
      const scalar_t* sp = s.data<scalar_t>();
      kernels::for_each_row<2>(dst.shape(), {dst.strides(), s.strides()},
                               [&](const std::array<int64_t, 2>& o, int64_t n, const std::array<int64_t, 2>& st) {
                                 for (int64_t i = 0; i < n; ++i)
                                   dp[o[0] + i * st[0]] = static_cast<D>(sp[o[1] + i * st[1]]);
                               });
    });
  });
}

// dst[i] = v
void fill_elements(const Tensor& dst, double v) {
  if (use_reference_kernels()) return reference::fill(dst, v);
  MG_DISPATCH_ALL(dst.dtype(), "fill_", [&] {
    scalar_t* p = dst.data<scalar_t>();
    scalar_t x = static_cast<scalar_t>(v);
    kernels::for_each_row<1>(dst.shape(), {dst.strides()},
                             [&](const std::array<int64_t, 1>& o, int64_t n, const std::array<int64_t, 1>& st) {
                               for (int64_t i = 0; i < n; ++i) p[o[0] + i * st[0]] = x;
                             });
  });
}

// dst[i] += alpha * o[i], o already of dst's shape and type
void add_elements(const Tensor& dst, const Tensor& o, double alpha) {
  if (use_reference_kernels()) return reference::add_(dst, o, alpha);
  MG_DISPATCH_FLOAT(dst.dtype(), "add_", [&] {
    scalar_t* p = dst.data<scalar_t>();
    const scalar_t* q = o.data<scalar_t>();
    scalar_t a = static_cast<scalar_t>(alpha);
    if (dst.is_contiguous() && o.is_contiguous()) {  // one flat row: split it over the threads (as map2 does)
      parallel_for(dst.numel(), 16384, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) p[i] += a * q[i];
      });
      return;
    }
    // Strided: the two common rows apart, so that they vectorise (a gradient broadcast back over a
    // map, as sum's backward gives, is a row of one value).
    kernels::for_each_row<2>(dst.shape(), {dst.strides(), o.strides()},
                             [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                               scalar_t* pr = p + off[0];
                               const scalar_t* qr = q + off[1];
                               if (st[0] == 1 && st[1] == 1) {
                                 for (int64_t i = 0; i < n; ++i) pr[i] += a * qr[i];
                               } else if (st[0] == 1 && st[1] == 0) {
                                 const scalar_t qv = *qr;
                                 for (int64_t i = 0; i < n; ++i) pr[i] += a * qv;
                               } else {
                                 for (int64_t i = 0; i < n; ++i) pr[i * st[0]] += a * qr[i * st[1]];
                               }
                             });
  });
}

// dst[i] *= v
void scale_elements(const Tensor& dst, double v) {
  if (use_reference_kernels()) return reference::mul_(dst, v);
  MG_DISPATCH_FLOAT(dst.dtype(), "mul_", [&] {
    scalar_t* p = dst.data<scalar_t>();
    scalar_t x = static_cast<scalar_t>(v);
    kernels::for_each_row<1>(dst.shape(), {dst.strides()},
                             [&](const std::array<int64_t, 1>& o, int64_t n, const std::array<int64_t, 1>& st) {
                               for (int64_t i = 0; i < n; ++i) p[o[0] + i * st[0]] *= x;
                             });
  });
}
}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype());
  copy_elements(out, *this);
  record("clone", out, {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = empty(shape(), t);
  copy_elements(out, *this);
  if (is_floating(t) && is_floating(dtype())) {
    DType from = dtype();
    record("to", out, {*this}, [from](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
  }
  return out;
}

// ---- autograd on the handle ----

Tensor& Tensor::requires_grad_(bool on) {
  MG_CHECK(!on || is_floating(dtype()), "requires_grad_", "only floating tensors can require gradients, got ", info());
  MG_CHECK(is_leaf() || on, "requires_grad_",
           "cannot turn off requires_grad of a non-leaf tensor; use detach() to cut it from the graph");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = this->impl().storage;
  impl->shape = shape();
  impl->strides = strides();
  impl->offset = offset();
  impl->dtype = dtype();
  return Tensor(impl);
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  MG_CHECK(requires_grad(), "backward",
           "the tensor does not require grad and has no graph (did a parameter miss requires_grad_(), or was "
           "the forward run under NoGradGuard?)");
  Tensor g = grad;
  if (!g.defined()) {
    MG_CHECK(numel() == 1, "backward", "a gradient is needed for a non-scalar output of shape ", shape_str(),
             "; call backward(grad) or reduce the output first (sum, mean)");
    g = full(shape(), 1.0, dtype());
  }
  MG_CHECK(g.shape() == shape(), "backward", "gradient of shape ", g.shape_str(), " for an output of shape ",
           shape_str());
  if (is_leaf()) {  // backward() on a leaf itself: its gradient is g
    Tensor acc = this->grad();
    impl().grad = (acc.defined() ? add(acc, g) : g.clone().detach()).impl_ptr();
    return;
  }
  run_backward(*this, g, retain_graph);
}

// ---- in-place ----

void Tensor::check_inplace(const char* op) const {
  MG_CHECK(!(grad_enabled() && requires_grad()), op, "in-place write into ", info(),
           " which requires grad and is part of a graph; "
           "do it under NoGradGuard (optimiser steps, running statistics) or use the out-of-place op");
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace("copy_");
  MG_CHECK(broadcast_shapes(src.shape(), shape(), "copy_") == shape(), "copy_", "cannot copy ", src.info(), " into ",
           info());
  copy_elements(*this, src);
  ++impl().storage->version;
  return *this;
}

Tensor& Tensor::fill_(double v) {
  check_inplace("fill_");
  fill_elements(*this, v);
  ++impl().storage->version;
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace("add_");
  MG_CHECK(broadcast_shapes(other.shape(), shape(), "add_") == shape(), "add_", "cannot add ", other.info(), " into ",
           info());
  Tensor o = other.dtype() == dtype() ? other.expand(shape()) : other.to(dtype()).expand(shape());
  add_elements(*this, o, alpha);
  ++impl().storage->version;
  return *this;
}

Tensor& Tensor::mul_(double v) {
  check_inplace("mul_");
  scale_elements(*this, v);
  ++impl().storage->version;
  return *this;
}

// ---- printing, in PyTorch's layout ----

namespace {
// Like PyTorch: a tensor of more than 1000 elements is summarised, showing 3 entries at each end
// of every longer dim; rows of an n-d tensor are separated by n - d - 1 newlines (blank lines
// between the 2-d blocks of a 3-d tensor).
void print_rec(std::ostream& os, const Tensor& t, Shape& idx, int64_t d, int width, int prec, bool fixed,
               bool summarise) {
  const int64_t n = t.shape()[d];
  const bool last = d == t.dim() - 1;
  const int64_t edge = 3;
  const std::string row_sep =
      "," + std::string(static_cast<size_t>(t.dim() - d - 1), '\n') + std::string(static_cast<size_t>(d + 8), ' ');
  os << '[';
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && n > 2 * edge && i == edge) {
      os << (last ? " ..., " : "..." + row_sep);
      i = n - edge - 1;
      continue;
    }
    idx[d] = i;
    if (last) {
      double v = t.at(idx);
      std::ostringstream s;
      if (t.dtype() == DType::Int64)
        s << static_cast<int64_t>(v);
      else if (fixed)
        s << std::fixed << std::setprecision(prec) << v;
      else
        s << std::scientific << std::setprecision(prec) << v;
      os << std::setw(width) << s.str();
    } else {
      print_rec(os, t, idx, d + 1, width, prec, fixed, summarise);
    }
    if (i + 1 < n) os << (last ? ", " : row_sep);
  }
  os << ']';
}
}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  Tensor c = t.detach();
  os << "tensor(";
  if (c.dim() == 0) {
    double v = c.item();
    if (c.dtype() == DType::Int64)
      os << static_cast<int64_t>(v);
    else
      os << std::fixed << std::setprecision(4) << v;
  } else {
    std::vector<double> all = c.to_vector();
    double mx = 0;
    for (double v : all) mx = std::max(mx, std::fabs(v));
    bool fixed = mx == 0 || (mx < 1e4 && mx >= 1e-3);
    int width = 1;
    for (double v : all) {
      std::ostringstream s;
      if (c.dtype() == DType::Int64)
        s << static_cast<int64_t>(v);
      else if (fixed)
        s << std::fixed << std::setprecision(4) << v;
      else
        s << std::scientific << std::setprecision(4) << v;
      width = std::max(width, static_cast<int>(s.str().size()));
    }
    Shape idx(c.dim(), 0);
    print_rec(os, c, idx, 0, width, 4, fixed, c.numel() > 1000);
  }
  if (t.dtype() != DType::Float32) os << ", dtype=" << dtype_name(t.dtype());
  if (t.grad_fn())
    os << ", grad_fn=<" << t.grad_fn()->name << ">";
  else if (t.requires_grad())
    os << ", requires_grad=True";
  return os << ")";
}

std::string to_string(const Tensor& t) {
  std::ostringstream o;
  o << t;
  return o.str();
}

}  // namespace mg
