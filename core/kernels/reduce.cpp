#include "maxgrad/core/kernels/reduce.h"

#include <algorithm>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/lanes.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/reference/reduce.h"

namespace mg::kernels {

namespace {

// A reduced prefix of a contiguous tensor (a bias gradient: sum over the batch): x is (rows, cols),
// summed as columns in place instead of transposing a large copy first. Rows in fixed blocks (each
// summed by columns, vectorised across them), then the blocks' sums added in order: parallel even
// when there are few columns and many rows.
template <typename T> void sum_columns(const T* p, int64_t rows, int64_t cols, T* o) {
  const int64_t block = 1024, parts = (rows + block - 1) / block;
  std::vector<double> partial(static_cast<size_t>(parts * cols), 0.0);
  parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t b = p0; b < p1; ++b) {
      double* acc = partial.data() + b * cols;
      for (int64_t i = b * block; i < std::min(rows, (b + 1) * block); ++i) {
        const T* row = p + i * cols;
        for (int64_t j = 0; j < cols; ++j) acc[j] += row[j];
      }
    }
  });
  parallel_for(cols, 1024, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      double s = 0;
      for (int64_t b = 0; b < parts; ++b) s += partial[b * cols + j];
      o[j] = static_cast<T>(s);
    }
  });
}

// Kept dims in one block between reduced ones (a conv bias gradient: (N, C, H, W) summed over N, H
// and W): x is (n, c, inner), each channel summed in place. A channel's rows (one per sample) go
// into the same kLanes partial sums, sample by sample. Channels in blocks of about 1 KB per sample,
// so that short rows are read side by side.
template <typename T> void sum_channels(const T* x, int64_t n, int64_t c, int64_t inner, T* o) {
  constexpr int64_t kLanes = 16, kMaxBlock = 16, kBlockBytes = 1024;
  const int64_t cb =
      std::clamp<int64_t>(kBlockBytes / static_cast<int64_t>(sizeof(T)) / std::max<int64_t>(inner, 1), 1, kMaxBlock);
  parallel_for((c + cb - 1) / cb, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t c0 = blk * cb, c1 = std::min(c, (blk + 1) * cb);
      double part[kMaxBlock][kLanes] = {};
      for (int64_t s = 0; s < n; ++s) {
        if (s + 1 < n)  // rows a sample apart are too short for the hardware prefetcher: ask for the next ones
          for (int64_t i = 0; i < (c1 - c0) * inner; i += static_cast<int64_t>(64 / sizeof(T)))
            __builtin_prefetch(x + ((s + 1) * c + c0) * inner + i);
        for (int64_t ch = c0; ch < c1; ++ch) {
          const T* row = x + (s * c + ch) * inner;
          add_lanes<kLanes>(inner, part[ch - c0], [&](int64_t i) { return static_cast<double>(row[i]); });
        }
      }
      for (int64_t ch = c0; ch < c1; ++ch) o[ch] = static_cast<T>(combine_lanes<kLanes>(part[ch - c0]));
    }
  });
}

// x is (rows, n) contiguous: o[i] = the sum of row i, in 8 lanes (vectorised).
template <typename T> void sum_rows(const T* p, int64_t rows, int64_t n, T* o) {
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const T* row = p + i * n;
      double part[8] = {};
      add_lanes<8>(n, part, [row](int64_t j) { return static_cast<double>(row[j]); });
      o[i] = static_cast<T>(combine_lanes<8>(part));
    }
  });
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<bool>& red, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape, x.dtype());
  if (use_reference_kernels()) {
    MG_DISPATCH_FLOAT(x.dtype(), "sum", [&] { reference::sum<scalar_t>(x, red, out); });
    return out;
  }
  Shape perm;
  int64_t n_red = 1, n_out = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!red[d]) perm.push_back(d), n_out *= x.size(d);
  for (int64_t d = 0; d < x.dim(); ++d)
    if (red[d]) perm.push_back(d), n_red *= x.size(d);
  bool prefix = true;  // every reduced dim before every kept one
  for (int64_t d = 0, seen_kept = 0; d < x.dim(); ++d) {
    if (!red[d])
      seen_kept = 1;
    else if (seen_kept)
      prefix = false;
  }
  int64_t k0 = x.dim(), k1 = 0;  // the kept dims, when they are one block between reduced ones: [k0, k1)
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!red[d]) k0 = std::min(k0, d), k1 = d + 1;
  bool middle = k0 < k1 && k0 > 0 && k1 < x.dim();
  for (int64_t d = k0; d < k1 && middle; ++d) middle = !red[d];
  MG_DISPATCH_FLOAT(x.dtype(), "sum", [&] {
    scalar_t* o = out.data<scalar_t>();
    if (x.is_contiguous() && n_out > 1 && prefix) return sum_columns(x.data<scalar_t>(), n_red, n_out, o);
    if (x.is_contiguous() && n_out > 1 && middle)
      return sum_channels(x.data<scalar_t>(), numel_of(Shape(x.shape().begin(), x.shape().begin() + k0)), n_out,
                          numel_of(Shape(x.shape().begin() + k1, x.shape().end())), o);
    Tensor xp = x.detach().permute(perm).contiguous();
    sum_rows(xp.data<scalar_t>(), n_out, n_red, o);
  });
  return out;
}

Tensor argmax(const Tensor& x, int64_t dim) {
  Shape out_shape = x.shape();
  out_shape.erase(out_shape.begin() + dim);
  Tensor idx = Tensor::empty(out_shape, DType::Int64);
  if (use_reference_kernels()) {
    MG_DISPATCH_FLOAT(x.dtype(), "argmax", [&] { reference::argmax<scalar_t>(x, dim, idx); });
    return idx;
  }
  // Move dim last (the other dims keep their order, so rows come out in the result's order).
  Shape perm;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != dim) perm.push_back(d);
  perm.push_back(dim);
  Tensor xp = x.detach().permute(perm).contiguous();
  const int64_t n = x.size(dim), rows = xp.numel() / n;
  int64_t* o = idx.data<int64_t>();
  MG_DISPATCH_FLOAT(x.dtype(), "argmax", [&] {
    const scalar_t* p = xp.data<scalar_t>();
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* row = p + r * n;
      o[r] = std::max_element(row, row + n) - row;
    }
  });
  return idx;
}

}  // namespace mg::kernels
