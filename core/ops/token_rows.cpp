// to_token_rows / from_token_rows: between a feature map (B, C, H, W) and rows of tokens (B, H*W, C),
// position p = h * W + w going to row rows[p]. MaxViT's window and grid partitions (and their
// inverses) are this with two different row orders (models/maxvit.cpp); written as reshape, permute
// and a copy, they were a strided gather of one value at a time, 3% of a training step.
// Each is the other's backward. The copy goes by blocks of one vector's width square (16 x 16 floats),
// transposed in registers, so that both the map's rows (along p) and the tokens' rows (along c) are
// read and written a vector at a time; the ragged edges (fewer than 16 positions or channels) go one
// value at a time.
#include <algorithm>
#include <memory>
#include <vector>

#include "core/autograd.h"
#include "core/kernels/simd.h"
#include "core/ops.h"
#include "core/parallel.h"

namespace mg {

namespace {

using kernels::kVecLanes;
using kernels::Vec;

using Rows = std::shared_ptr<const std::vector<int64_t>>;

// f(s, p0, np, c0, nc) for every block of sample s: positions [p0, p0 + np) x channels [c0, c0 + nc),
// at most one vector's width each way; (sample, positions) blocks in parallel.
template <typename T, typename F> void for_blocks(int64_t b, int64_t c, int64_t hw, F f) {
  constexpr int64_t kBlock = kVecLanes<T>;
  const int64_t pblocks = (hw + kBlock - 1) / kBlock;
  parallel_for(b * pblocks, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, c * kBlock)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t s = i / pblocks, p0 = i % pblocks * kBlock;
      for (int64_t c0 = 0; c0 < c; c0 += kBlock) f(s, p0, std::min(kBlock, hw - p0), c0, std::min(kBlock, c - c0));
    }
  });
}

// t (b, hw, c) <- x (b, c, hw): t[s, rows[p], ch] = x[s, ch, p]
template <typename T> void map_to_rows(const T* x, int64_t b, int64_t c, int64_t hw, const int64_t* rows, T* t) {
  constexpr int64_t kBlock = kVecLanes<T>;
  for_blocks<T>(b, c, hw, [&](int64_t s, int64_t p0, int64_t np, int64_t c0, int64_t nc) {
    const T* src = x + (s * c + c0) * hw + p0;  // channel cc's positions at src + cc * hw
    auto dst = [&](int64_t pp) { return t + (s * hw + rows[p0 + pp]) * c + c0; };
    if (nc == kBlock && np == kBlock) {  // a whole block: in registers, transposed by shuffles
      Vec<T> r[kBlock];
      for (int64_t cc = 0; cc < kBlock; ++cc) r[cc] = kernels::vload(src + cc * hw);
      kernels::vtranspose<T>(r);
      for (int64_t pp = 0; pp < kBlock; ++pp) kernels::vstore(dst(pp), r[pp]);
      return;
    }
    for (int64_t pp = 0; pp < np; ++pp)  // a ragged edge, one value at a time
      for (int64_t cc = 0; cc < nc; ++cc) dst(pp)[cc] = src[cc * hw + pp];
  });
}

// x (b, c, hw) <- t (b, hw, c): x[s, ch, p] = t[s, rows[p], ch]
template <typename T> void rows_to_map(const T* t, int64_t b, int64_t c, int64_t hw, const int64_t* rows, T* x) {
  constexpr int64_t kBlock = kVecLanes<T>;
  for_blocks<T>(b, c, hw, [&](int64_t s, int64_t p0, int64_t np, int64_t c0, int64_t nc) {
    T* dst = x + (s * c + c0) * hw + p0;  // channel cc's positions at dst + cc * hw
    auto src = [&](int64_t pp) { return t + (s * hw + rows[p0 + pp]) * c + c0; };
    if (nc == kBlock && np == kBlock) {
      Vec<T> r[kBlock];
      for (int64_t pp = 0; pp < kBlock; ++pp) r[pp] = kernels::vload(src(pp));
      kernels::vtranspose<T>(r);
      for (int64_t cc = 0; cc < kBlock; ++cc) kernels::vstore(dst + cc * hw, r[cc]);
      return;
    }
    for (int64_t pp = 0; pp < np; ++pp)
      for (int64_t cc = 0; cc < nc; ++cc) dst[cc * hw + pp] = src(pp)[cc];
  });
}

Rows checked_rows(const std::vector<int64_t>& rows, int64_t hw, const char* op) {
  MG_CHECK(static_cast<int64_t>(rows.size()) == hw, op, "rows has ", rows.size(), " entries for ", hw,
           " positions (one row per position h * W + w)");
  std::vector<char> seen(static_cast<size_t>(hw), 0);
  for (int64_t r : rows) {
    MG_CHECK(r >= 0 && r < hw && !seen[static_cast<size_t>(r)], op, "rows must be a permutation of 0..", hw - 1,
             ": row ", r, r >= 0 && r < hw ? " appears twice" : " is out of range");
    seen[static_cast<size_t>(r)] = 1;
  }
  return std::make_shared<const std::vector<int64_t>>(rows);
}

Tensor to_rows_impl(const Tensor& x, const Rows& rows);
Tensor from_rows_impl(const Tensor& t, const Rows& rows, int64_t h, int64_t w);

Tensor to_rows_impl(const Tensor& x_in, const Rows& rows) {
  const int64_t b = x_in.size(0), c = x_in.size(1), h = x_in.size(2), w = x_in.size(3);
  Tensor x = x_in.detach().contiguous();
  Tensor t = Tensor::empty({b, h * w, c}, x.dtype());
  MG_DISPATCH_FLOAT(x.dtype(), "to_token_rows",
                    [&] { map_to_rows(x.data<scalar_t>(), b, c, h * w, rows->data(), t.data<scalar_t>()); });
  record("to_token_rows", t, {x_in},
         [rows, h, w](const Tensor& g) { return std::vector<Tensor>{from_rows_impl(g, rows, h, w)}; });
  return t;
}

Tensor from_rows_impl(const Tensor& t_in, const Rows& rows, int64_t h, int64_t w) {
  const int64_t b = t_in.size(0), c = t_in.size(2);
  Tensor t = t_in.detach().contiguous();
  Tensor x = Tensor::empty({b, c, h, w}, t.dtype());
  MG_DISPATCH_FLOAT(t.dtype(), "from_token_rows",
                    [&] { rows_to_map(t.data<scalar_t>(), b, c, h * w, rows->data(), x.data<scalar_t>()); });
  record("from_token_rows", x, {t_in}, [rows](const Tensor& g) { return std::vector<Tensor>{to_rows_impl(g, rows)}; });
  return x;
}

}  // namespace

Tensor to_token_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  MG_CHECK(x.dim() == 4, "to_token_rows", "expected a feature map (B, C, H, W), got ", x.info());
  return to_rows_impl(x, checked_rows(rows, x.size(2) * x.size(3), "to_token_rows"));
}

Tensor from_token_rows(const Tensor& t, const std::vector<int64_t>& rows, int64_t h, int64_t w) {
  MG_CHECK(t.dim() == 3 && t.size(1) == h * w, "from_token_rows", "expected tokens (B, ", h * w, ", C) for a ", h, "x",
           w, " map, got ", t.info());
  return from_rows_impl(t, checked_rows(rows, h * w, "from_token_rows"), h, w);
}

}  // namespace mg
