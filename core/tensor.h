// Tensor: a view (shape, strides, offset, dtype) onto shared Storage, plus the autograd fields.
//
// A Tensor is a cheap handle (a shared_ptr to TensorImpl): copying it aliases, like a PyTorch
// tensor in Python. Views (reshape, permute, narrow, expand, ...) share the Storage and differ only
// in shape/strides/offset, so a view of a view is just more arithmetic on the same bytes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "maxgrad/core/dtype.h"
#include "maxgrad/core/error.h"
#include "maxgrad/core/storage.h"

namespace mg {

using Shape = std::vector<int64_t>;
class Node;
class Generator;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;  // in elements, not bytes
  int64_t offset = 0;
  DType dtype = DType::Float32;

  // Autograd. A leaf (grad_fn == nullptr) with requires_grad collects .grad in backward();
  // a non-leaf's gradient flows into grad_fn, the Node that made it.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
  std::string name;  // optional, shown by graph_to_string (set_name)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation (see also core/factory.h) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32);
  // Copies `values` into a new tensor of `shape` (numel must match).
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::Float32);
  static Tensor from_vector_i64(const std::vector<int64_t>& values, const Shape& shape);
  static Tensor scalar(double v, DType dtype = DType::Float32);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const { return impl().dtype; }
  bool is_contiguous() const;
  std::string shape_str() const { return mg::shape_str(shape()); }
  std::string info() const;  // "float32[2, 3]" for error messages

  // Pointer to element [0,...,0] (storage base + offset). T must match dtype().
  template <typename T> T* data() const {
    check_type(dtype_of<T>::value);
    return static_cast<T*>(impl().storage->data()) + impl().offset;
  }
  // Value of a one-element tensor as double (any dtype).
  double item() const;
  // Element at a multi-index, as double: slow, for tests and printing.
  double at(const Shape& index) const;
  std::vector<double> to_vector() const;  // all elements in row-major order, as double

  // ---- views: share storage ----
  Tensor view(const Shape& shape) const;     // needs compatible strides; -1 infers one dim
  Tensor reshape(const Shape& shape) const;  // view when possible, else a contiguous copy
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor squeeze(int64_t d) const;
  Tensor unsqueeze(int64_t d) const;
  Tensor expand(const Shape& shape) const;  // -1 keeps a dim; size-1 dims broadcast with stride 0
  Tensor narrow(int64_t d, int64_t start, int64_t length) const;
  Tensor select(int64_t d, int64_t index) const;  // narrow + squeeze
  std::vector<Tensor> chunk(int64_t chunks, int64_t d) const;
  std::vector<Tensor> split(int64_t split_size, int64_t d) const;

  Tensor contiguous() const;  // self when already contiguous
  Tensor clone() const;       // always a fresh contiguous copy (differentiable)
  Tensor to(DType dtype) const;

  // ---- autograd ----
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool on = true);
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  void zero_grad() { impl().grad.reset(); }  // like PyTorch's set_to_none=True
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor detach() const;  // same storage, no history
  // Reverse-mode AD from this tensor; a scalar gets gradient 1 when `grad` is undefined.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  Tensor& set_name(const std::string& n) {
    impl().name = n;
    return *this;
  }
  const std::string& name() const { return impl().name; }

  // ---- in-place (outside a live graph: optimiser steps, running statistics) ----
  Tensor& copy_(const Tensor& src);  // broadcasts src to self's shape, converts dtype
  Tensor& fill_(double v);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& add_(const Tensor& other, double alpha = 1.0);  // self += alpha * other
  Tensor& mul_(double v);

  // The storage's version counter: bumped by every in-place write, checked by backward.
  uint64_t version() const { return impl().storage->version; }

  TensorImpl& impl() const {
    if (!impl_) throw Error("Tensor: use of an undefined tensor (default-constructed or moved-from)");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  void check_type(DType t) const;
  void check_inplace(const char* op) const;
  std::shared_ptr<TensorImpl> impl_;
};

// Contiguous row-major strides for a shape.
Shape contiguous_strides(const Shape& shape);
int64_t numel_of(const Shape& shape);
// Wraps a possibly negative dim into [0, ndim); throws naming `op` when out of range.
int64_t wrap_dim(int64_t d, int64_t ndim, const char* op);
// A new tensor viewing `base`'s storage with the given geometry, no autograd.
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);

}  // namespace mg
