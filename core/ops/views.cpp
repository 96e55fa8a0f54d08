// Views: new shape/strides/offset over the same storage, no data copied. Each records a backward
// that maps the gradient back to the input's geometry (reshape back, inverse permutation, sum over
// broadcast dims, or place into a zero tensor for a slice).
#include <algorithm>
#include <numeric>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"

namespace mg {

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl().storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(impl);
}

namespace {

Shape infer_shape(Shape shape, int64_t numel, const char* op, const Shape& from) {
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      MG_CHECK(infer < 0, op, "only one dimension can be -1, got ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      MG_CHECK(shape[i] >= 0, op, "invalid size ", shape[i], " in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    MG_CHECK(known != 0 && numel % known == 0, op, "shape ", shape_str(shape), " is invalid for input of shape ",
             shape_str(from), " (", numel, " elements)");
    shape[infer] = numel / known;
  }
  MG_CHECK(numel_of(shape) == numel, op, "shape ", shape_str(shape), " is invalid for input of shape ", shape_str(from),
           " (", numel, " elements)");
  return shape;
}

// Strides for viewing (old shape, old strides) as new_shape without a copy, if possible
// (PyTorch's computeStride): each run of old dims that is contiguous in memory may be re-split.
bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape, Shape& out) {
  out.assign(new_shape.size(), 0);
  if (numel_of(old_shape) == 0 || old_shape.empty()) {
    out = contiguous_strides(new_shape);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

void record_reshape(const char* name, Tensor& out, const Tensor& in) {
  Shape in_shape = in.shape();
  record(name, out, {in}, [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
}

}  // namespace

Tensor Tensor::view(const Shape& s) const {
  Shape shape = infer_shape(s, numel(), "view", this->shape());
  Shape st;
  MG_CHECK(view_strides(this->shape(), strides(), shape, st), "view", "cannot view ", info(), " (strides ",
           mg::shape_str(strides()), ") as ", mg::shape_str(shape),
           " without copying: the dims being merged are not contiguous in memory; use reshape()");
  Tensor out = make_view(*this, shape, st, offset());
  record_reshape("view", out, *this);
  return out;
}

Tensor Tensor::reshape(const Shape& s) const {
  Shape shape = infer_shape(s, numel(), "reshape", this->shape());
  Shape st;
  if (view_strides(this->shape(), strides(), shape, st)) {
    Tensor out = make_view(*this, shape, st, offset());
    record_reshape("reshape", out, *this);
    return out;
  }
  return contiguous().view(shape);  // contiguous() records its own copy node
}

Tensor Tensor::permute(const Shape& dims) const {
  MG_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute", "got ", dims.size(), " dims ", mg::shape_str(dims),
           " for a tensor of shape ", shape_str());
  Shape shape(dims.size()), st(dims.size()), inverse(dims.size());
  std::vector<bool> used(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    MG_CHECK(!used[d], "permute", "dim ", d, " repeated in ", mg::shape_str(dims));
    used[d] = true;
    shape[i] = this->shape()[d];
    st[i] = strides()[d];
    inverse[d] = static_cast<int64_t>(i);
  }
  Tensor out = make_view(*this, shape, st, offset());
  record("permute", out, {*this}, [inverse](const Tensor& g) { return std::vector<Tensor>{g.permute(inverse)}; });
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  Shape dims(dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[wrap_dim(d0, dim(), "transpose")], dims[wrap_dim(d1, dim(), "transpose")]);
  return permute(dims);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  MG_CHECK(start <= end, "flatten", "start dim ", start, " is after end dim ", end);
  Shape s(shape().begin(), shape().begin() + start);
  int64_t m = 1;
  for (int64_t d = start; d <= end; ++d) m *= shape()[d];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + end + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (shape()[d] != 1) return *this;  // like PyTorch: squeezing a non-1 dim is a no-op
  Shape s = shape();
  s.erase(s.begin() + d);
  return view(s);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return view(s);
}

Tensor Tensor::expand(const Shape& target) const {
  MG_CHECK(static_cast<int64_t>(target.size()) >= dim(), "expand", "cannot expand ", info(), " to ",
           mg::shape_str(target), ": the target has fewer dims");
  const int64_t lead = static_cast<int64_t>(target.size()) - dim();
  Shape shape(target.size()), st(target.size());
  for (int64_t d = 0; d < static_cast<int64_t>(target.size()); ++d) {
    if (d < lead) {
      MG_CHECK(target[d] >= 0, "expand", "size -1 not allowed in a new leading dim, target ", mg::shape_str(target));
      shape[d] = target[d];
      st[d] = 0;
      continue;
    }
    int64_t have = this->shape()[d - lead];
    int64_t want = target[d] == -1 ? have : target[d];
    MG_CHECK(have == want || have == 1, "expand", "cannot expand ", info(), " to ", mg::shape_str(target), ": dim ", d,
             " has size ", have, " (only size-1 dims can be expanded)");
    shape[d] = want;
    st[d] = have == want ? strides()[d - lead] : 0;
  }
  if (shape == this->shape()) return *this;
  Tensor out = make_view(*this, shape, st, offset());
  Shape in_shape = this->shape();
  record("expand", out, {*this}, [in_shape](const Tensor& g) { return std::vector<Tensor>{sum_to(g, in_shape)}; });
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  const int64_t n = shape()[d];
  if (start < 0) start += n;
  MG_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow", "range [", start, ", ", start + length,
           ") is out of bounds for dim ", d, " of size ", n, " in a tensor of shape ", shape_str());
  Shape s = shape();
  s[d] = length;
  Tensor out = make_view(*this, s, strides(), offset() + start * strides()[d]);
  Shape in_shape = shape();
  DType dt = dtype();
  record("narrow", out, {*this}, [in_shape, dt, d, start, length](const Tensor& g) {
    Tensor gi = zeros(in_shape, dt);  // the slice's gradient, zero elsewhere
    gi.narrow(d, start, length).copy_(g);
    return std::vector<Tensor>{gi};
  });
  return out;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  MG_CHECK(index >= -size(d) && index < size(d), "select", "index ", index, " is out of range for dim ", d, " of size ",
           size(d));
  return narrow(d, index < 0 ? index + size(d) : index, 1).squeeze(d);
}

std::vector<Tensor> Tensor::split(int64_t split_size, int64_t d) const {
  d = wrap_dim(d, dim(), "split");
  MG_CHECK(split_size > 0, "split", "split_size must be positive, got ", split_size);
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < shape()[d]; s += split_size)
    parts.push_back(narrow(d, s, std::min(split_size, shape()[d] - s)));
  return parts;
}

std::vector<Tensor> Tensor::chunk(int64_t chunks, int64_t d) const {
  MG_CHECK(chunks > 0, "chunk", "number of chunks must be positive, got ", chunks);
  int64_t n = size(d);
  return split(std::max<int64_t>(1, (n + chunks - 1) / chunks), d);  // PyTorch's rounding
}

}  // namespace mg
