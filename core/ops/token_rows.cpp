// to_token_rows / from_token_rows: between a feature map (B, C, H, W) and rows of tokens (B, H*W, C),
// position p = h * W + w going to row rows[p]. MaxViT's window and grid partitions (and their
// inverses) are this with two different row orders (models/maxvit.cpp); written as reshape, permute
// and a copy, they were a strided gather of one value at a time.
//   to_token_rows:   t[s, rows[p], ch] = x[s, ch, p]
//   from_token_rows: x[s, ch, p] = t[s, rows[p], ch]
// Each is the other's backward: a permutation's gradient is the inverse permutation of the gradient.
// The copies are in core/kernels/token_rows.cpp (blocks transposed in registers).
#include "maxgrad/core/kernels/token_rows.h"

#include <memory>
#include <vector>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/ops.h"

namespace mg {

namespace {

using Rows = std::shared_ptr<const std::vector<int64_t>>;

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
                    [&] { kernels::to_token_rows(x.data<scalar_t>(), b, c, h * w, rows->data(), t.data<scalar_t>()); });
  record("to_token_rows", t, {x_in},
         [rows, h, w](const Tensor& g) { return std::vector<Tensor>{from_rows_impl(g, rows, h, w)}; });
  return t;
}

Tensor from_rows_impl(const Tensor& t_in, const Rows& rows, int64_t h, int64_t w) {
  const int64_t b = t_in.size(0), c = t_in.size(2);
  Tensor t = t_in.detach().contiguous();
  Tensor x = Tensor::empty({b, c, h, w}, t.dtype());
  MG_DISPATCH_FLOAT(t.dtype(), "from_token_rows", [&] {
    kernels::from_token_rows(t.data<scalar_t>(), b, c, h * w, rows->data(), x.data<scalar_t>());
  });
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
