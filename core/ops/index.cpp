// Indexing by int64 tensors. index_select picks whole slices along a dim (the relative position
// bias table lookup); gather picks one element per output position. Both scatter-add in backward,
// since an index may repeat.
#include "maxgrad/core/autograd.h"
#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"

namespace mg {

namespace {
void check_index(const Tensor& index, int64_t size, const char* op, const Tensor& x, int64_t dim) {
  MG_CHECK(index.dtype() == DType::Int64, op, "index must be int64, got ", index.info());
  Tensor ic = index.contiguous();
  const int64_t* p = ic.data<int64_t>();
  for (int64_t i = 0, n = ic.numel(); i < n; ++i)
    MG_CHECK(p[i] >= 0 && p[i] < size, op, "index ", p[i], " is out of range for dim ", dim, " of size ", size, " in ",
             x.info());
}

// Treat x as (outer, size, inner) around dim.
void split_dims(const Tensor& x, int64_t dim, int64_t& outer, int64_t& inner) {
  outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
}
}  // namespace

// out (.., len(index), ..) = x (.., size, ..)[index];  dx[index[i]] += g[i]
Tensor index_select(const Tensor& x_in, int64_t dim, const Tensor& index) {
  dim = wrap_dim(dim, x_in.dim(), "index_select");
  MG_CHECK(index.dim() == 1, "index_select", "index must be 1-D, got ", index.info());
  check_index(index, x_in.size(dim), "index_select", x_in, dim);
  Tensor x = x_in.detach().contiguous(), idx = index.contiguous();
  int64_t outer, inner;
  split_dims(x, dim, outer, inner);
  const int64_t size = x.size(dim), m = idx.numel();
  Shape os = x.shape();
  os[dim] = m;
  Tensor out = Tensor::empty(os, x.dtype());
  MG_DISPATCH_ALL(x.dtype(), "index_select", [&] {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    const int64_t* pi = idx.data<int64_t>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < m; ++i)
        std::copy(px + (o * size + pi[i]) * inner, px + (o * size + pi[i] + 1) * inner, po + (o * m + i) * inner);
  });
  Shape xs = x.shape();
  record("index_select", out, {x_in}, [xs, idx, outer, inner, size, m](const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    Tensor gx = zeros(xs, g.dtype());
    MG_DISPATCH_FLOAT(g.dtype(), "index_select backward", [&] {
      const scalar_t* pg = g.data<scalar_t>();
      scalar_t* px = gx.data<scalar_t>();
      const int64_t* pi = idx.data<int64_t>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < m; ++i) {
          scalar_t* dst = px + (o * size + pi[i]) * inner;
          const scalar_t* src = pg + (o * m + i) * inner;
          for (int64_t j = 0; j < inner; ++j) dst[j] += src[j];
        }
    });
    return std::vector<Tensor>{gx};
  });
  return out;
}

// out[.., i, ..] = x[.., index[.., i, ..], ..] along dim; index has x's shape except along dim
Tensor gather(const Tensor& x_in, int64_t dim, const Tensor& index) {
  dim = wrap_dim(dim, x_in.dim(), "gather");
  MG_CHECK(index.dim() == x_in.dim(), "gather", "index ", index.info(), " must have as many dims as input ",
           x_in.info());
  for (int64_t d = 0; d < x_in.dim(); ++d)
    MG_CHECK(d == dim || index.size(d) == x_in.size(d), "gather", "index ", index.info(), " and input ", x_in.info(),
             " differ in dim ", d, " (only dim ", dim, " may differ)");
  check_index(index, x_in.size(dim), "gather", x_in, dim);
  Tensor x = x_in.detach().contiguous(), idx = index.contiguous();
  int64_t outer, inner;
  split_dims(x, dim, outer, inner);
  const int64_t size = x.size(dim), m = idx.size(dim);
  Tensor out = Tensor::empty(idx.shape(), x.dtype());
  MG_DISPATCH_ALL(x.dtype(), "gather", [&] {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    const int64_t* pi = idx.data<int64_t>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < inner; ++j) {
          const int64_t at = (o * m + i) * inner + j;
          po[at] = px[(o * size + pi[at]) * inner + j];
        }
  });
  Shape xs = x.shape();
  record("gather", out, {x_in}, [xs, idx, outer, inner, size, m](const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    Tensor gx = zeros(xs, g.dtype());
    MG_DISPATCH_FLOAT(g.dtype(), "gather backward", [&] {
      const scalar_t* pg = g.data<scalar_t>();
      scalar_t* px = gx.data<scalar_t>();
      const int64_t* pi = idx.data<int64_t>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < inner; ++j) {
            const int64_t at = (o * m + i) * inner + j;
            px[(o * size + pi[at]) * inner + j] += pg[at];
          }
    });
    return std::vector<Tensor>{gx};
  });
  return out;
}

}  // namespace mg
