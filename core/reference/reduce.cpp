#include "maxgrad/core/reference/reduce.h"

#include "maxgrad/core/reference/elementwise.h"

namespace mg::reference {

template <typename T> void sum(const Tensor& x, const std::vector<bool>& reduced, Tensor& out) {
  // An element's output index: its index with the reduced dims left out.
  Shape kept_shape, kept_strides;  // x's kept dims, and the output's (contiguous) strides for them
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!reduced[d]) kept_shape.push_back(x.size(d));
  const Shape out_strides = contiguous_strides(kept_shape);
  for (int64_t d = 0, k = 0; d < x.dim(); ++d) kept_strides.push_back(reduced[d] ? 0 : out_strides[k++]);

  std::vector<double> acc(static_cast<size_t>(out.numel()), 0.0);
  const T* p = x.data<T>();
  for (int64_t i = 0; i < x.numel(); ++i)
    acc[offset_of(i, x.shape(), kept_strides)] += static_cast<double>(p[offset_of(i, x.shape(), x.strides())]);
  T* o = out.data<T>();
  for (int64_t j = 0; j < out.numel(); ++j) o[j] = static_cast<T>(acc[j]);
}

template <typename T> void argmax(const Tensor& x, int64_t dim, Tensor& idx) {
  Shape rest_shape = x.shape(), rest_strides = x.strides();  // x without dim: one output per element
  rest_shape.erase(rest_shape.begin() + dim);
  rest_strides.erase(rest_strides.begin() + dim);
  const T* p = x.data<T>();
  int64_t* o = idx.data<int64_t>();
  for (int64_t r = 0; r < idx.numel(); ++r) {
    const T* row = p + offset_of(r, rest_shape, rest_strides);
    int64_t best = 0;
    for (int64_t j = 1; j < x.size(dim); ++j)
      if (row[j * x.strides()[dim]] > row[best * x.strides()[dim]]) best = j;
    o[r] = best;
  }
}

template void sum<float>(const Tensor&, const std::vector<bool>&, Tensor&);
template void sum<double>(const Tensor&, const std::vector<bool>&, Tensor&);
template void argmax<float>(const Tensor&, int64_t, Tensor&);
template void argmax<double>(const Tensor&, int64_t, Tensor&);

}  // namespace mg::reference
