// Reductions. The kernel arranges the tensor as (kept, reduced) and sums each row in double
// precision, in lanes (core/kernels/lanes.h): one fixed order per output element, so any thread
// count gives the same bits. (Two layouts are summed in place instead: a reduced prefix, by columns
// in fixed blocks of rows; and kept dims between reduced ones, by BatchNorm's per-channel lane sums.)
#include <algorithm>
#include <numeric>

#include "core/autograd.h"
#include "core/factory.h"
#include "core/kernels/batch_norm.h"
#include "core/kernels/lanes.h"
#include "core/kernels/loops.h"
#include "core/ops.h"

namespace mg {

namespace {

std::vector<bool> reduced_mask(const Tensor& x, std::vector<int64_t>& dims, const char* op) {
  std::vector<bool> red(x.dim(), false);
  for (int64_t& d : dims) {
    d = wrap_dim(d, x.dim(), op);
    MG_CHECK(!red[d], op, "dim ", d, " appears twice in the reduction dims");
    red[d] = true;
  }
  return red;
}

Shape reduced_shape(const Tensor& x, const std::vector<bool>& red, bool keepdim) {
  Shape s;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (!red[d])
      s.push_back(x.size(d));
    else if (keepdim)
      s.push_back(1);
  }
  return s;
}

// out[i] = sum_j x[i, j] over the (kept, reduced) arrangement of x.
Tensor sum_kernel(const Tensor& x, const std::vector<bool>& red, const Shape& out_shape) {
  Shape perm, kept_shape;
  int64_t n_red = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!red[d]) perm.push_back(d), kept_shape.push_back(x.size(d));
  for (int64_t d = 0; d < x.dim(); ++d)
    if (red[d]) perm.push_back(d), n_red *= x.size(d);
  const int64_t n_out = numel_of(kept_shape);
  Tensor out = Tensor::empty(out_shape, x.dtype());
  MG_DISPATCH_FLOAT(x.dtype(), "sum", [&] {
    scalar_t* o = out.data<scalar_t>();
    // A reduced prefix of a contiguous tensor (a bias gradient: sum over the batch) is summed as
    // columns, in place, instead of transposing a large copy first.
    bool prefix = x.is_contiguous();
    for (int64_t d = 0, seen_kept = 0; d < x.dim(); ++d) {
      if (!red[d])
        seen_kept = 1;
      else if (seen_kept)
        prefix = false;
    }
    if (prefix && n_out > 1) {
      // Rows in fixed blocks (each summed by columns, vectorised across them), then the blocks'
      // sums added in order: parallel even when there are few columns and many rows.
      const scalar_t* p = x.data<scalar_t>();
      const int64_t block = 1024, parts = (n_red + block - 1) / block;
      std::vector<double> partial(static_cast<size_t>(parts * n_out), 0.0);
      parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
        for (int64_t b = p0; b < p1; ++b) {
          double* acc = partial.data() + b * n_out;
          for (int64_t i = b * block; i < std::min(n_red, (b + 1) * block); ++i) {
            const scalar_t* row = p + i * n_out;
            for (int64_t j = 0; j < n_out; ++j) acc[j] += row[j];
          }
        }
      });
      parallel_for(n_out, 1024, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) {
          double s = 0;
          for (int64_t b = 0; b < parts; ++b) s += partial[b * n_out + j];
          o[j] = static_cast<scalar_t>(s);
        }
      });
      return;
    }
    // Kept dims in one block between reduced ones (a conv bias gradient: (N, C, H, W) summed over
    // N, H and W): summed in place per kept index, with the vectorised lane sums of BatchNorm's
    // kernel, instead of copying the tensor into (kept, reduced) order first.
    int64_t k0 = x.dim(), k1 = 0;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (!red[d]) k0 = std::min(k0, d), k1 = d + 1;
    bool block = x.is_contiguous() && k0 < k1 && k0 > 0 && k1 < x.dim();
    for (int64_t d = k0; d < k1 && block; ++d) block = !red[d];
    if (block && n_out > 1) {
      const kernels::BnGeom geom{numel_of(Shape(x.shape().begin(), x.shape().begin() + k0)), n_out,
                                 numel_of(Shape(x.shape().begin() + k1, x.shape().end()))};
      std::vector<double> acc(static_cast<size_t>(n_out));
      kernels::bn_channel_sums(x.data<scalar_t>(), geom, acc.data());
      for (int64_t j = 0; j < n_out; ++j) o[j] = static_cast<scalar_t>(acc[j]);
      return;
    }
    Tensor xp = x.detach().permute(perm).contiguous();
    const scalar_t* p = xp.data<scalar_t>();
    parallel_for(n_out, std::max<int64_t>(1, 16384 / std::max<int64_t>(n_red, 1)), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const scalar_t* row = p + i * n_red;
        double part[8] = {};  // 8 lanes: vectorised (core/kernels/lanes.h)
        kernels::add_lanes<8>(n_red, part, [row](int64_t j) { return static_cast<double>(row[j]); });
        o[i] = static_cast<scalar_t>(kernels::combine_lanes<8>(part));
      }
    });
  });
  return out;
}

}  // namespace

// out = sum over dims;  dx = g broadcast back over the summed dims
Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  std::vector<bool> red = reduced_mask(x, dims, "sum");
  Shape out_shape = reduced_shape(x, red, keepdim);
  Tensor out = sum_kernel(x, red, out_shape);
  Shape in_shape = x.shape(), kept = reduced_shape(x, red, true);
  // The gradient is g broadcast back over the summed dims: an expanded view (stride 0), not a
  // copy; whatever consumes it reads it through its strides.
  record("sum", out, {x},
         [in_shape, kept](const Tensor& g) { return std::vector<Tensor>{g.reshape(kept).expand(in_shape)}; });
  return out;
}

Tensor sum(const Tensor& x) {
  std::vector<int64_t> all(x.dim());
  std::iota(all.begin(), all.end(), 0);
  return sum(x, all, false);
}

// out = sum / n
Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  std::vector<bool> red = reduced_mask(x, dims, "mean");
  int64_t n = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (red[d]) n *= x.size(d);
  MG_CHECK(n > 0, "mean", "mean over an empty dimension of ", x.info());
  return mul(sum(x, dims, keepdim), 1.0 / static_cast<double>(n));
}

Tensor mean(const Tensor& x) {
  std::vector<int64_t> all(x.dim());
  std::iota(all.begin(), all.end(), 0);
  return mean(x, all, false);
}

// Two-pass variance, written with differentiable ops so its gradient comes for free:
// var = sum((x - mean)^2) / (n - correction)
Tensor var(const Tensor& x, std::vector<int64_t> dims, int64_t correction, bool keepdim) {
  std::vector<int64_t> d = dims;
  std::vector<bool> red = reduced_mask(x, d, "var");
  int64_t n = 1;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (red[i]) n *= x.size(i);
  MG_CHECK(n - correction > 0, "var", "needs more than ", correction, " elements per reduction, got ", n, " from ",
           x.info());
  Tensor centred = sub(x, mean(x, d, true));
  return mul(sum(mul(centred, centred), d, keepdim), 1.0 / static_cast<double>(n - correction));
}

// Index of the first maximum along dim (int64).
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  dim = wrap_dim(dim, x.dim(), "argmax");
  MG_CHECK(x.size(dim) > 0, "argmax", "empty dimension ", dim, " in ", x.info());
  // Move dim last (the other dims keep their order, so rows come out in the result's order).
  Shape perm;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != dim) perm.push_back(d);
  perm.push_back(dim);
  Tensor xp = x.detach().permute(perm).contiguous();
  const int64_t n = x.size(dim), rows = xp.numel() / n;
  Shape out_shape = x.shape();
  out_shape.erase(out_shape.begin() + dim);
  Tensor idx = Tensor::empty(out_shape, DType::Int64);
  int64_t* o = idx.data<int64_t>();
  MG_DISPATCH_FLOAT(x.dtype(), "argmax", [&] {
    const scalar_t* p = xp.data<scalar_t>();
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* row = p + r * n;
      o[r] = std::max_element(row, row + n) - row;
    }
  });
  return keepdim ? idx.unsqueeze(dim) : idx;
}

// values of the max along dim; the gradient goes to the first maximal element (as PyTorch's max(dim))
Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor idx = argmax(x, dim, true);
  Tensor out = gather(x, dim, idx);
  return keepdim ? out : out.squeeze(wrap_dim(dim, x.dim(), "max"));
}

}  // namespace mg
