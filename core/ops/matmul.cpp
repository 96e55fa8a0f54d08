// matmul and linear through BLAS. A matrix operand whose last two dims are transposed in memory
// (a .transpose(-1, -2) view, as every backward makes) is passed with BLAS's transpose flag
// instead of being copied.
#include "core/autograd.h"
#include "core/kernels/gemm.h"
#include "core/ops.h"
#include "core/parallel.h"

namespace mg {

namespace {

// How BLAS can read the last two dims of t (rows x cols) without a copy, if it can.
struct MatrixView {
  bool trans = false;
  int64_t ld = 0;
};
bool as_blas_matrix(const Tensor& t, MatrixView& mv) {
  const int64_t r = t.size(-2), c = t.size(-1);
  const int64_t sr = t.strides()[t.dim() - 2], sc = t.strides()[t.dim() - 1];
  if ((sc == 1 || c == 1) && sr >= std::max<int64_t>(c, 1)) return mv = {false, sr}, true;
  if ((sr == 1 || r == 1) && sc >= std::max<int64_t>(r, 1)) return mv = {true, sc}, true;
  return false;
}

// The stride between consecutive matrices when t's batch dims can be walked as one flat index
// (size-1 dims are skipped: their strides are arbitrary; stride 0 means a broadcast operand).
bool flat_batch_stride(const Tensor& t, int64_t& stride) {
  stride = 0;
  int64_t inner = 0;  // elements of the batch dims seen so far (0: none of size > 1 yet)
  for (int64_t d = t.dim() - 3; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (inner == 0) {
      stride = t.strides()[d];
      inner = t.size(d);
    } else {
      if (t.strides()[d] != stride * inner) return false;
      inner *= t.size(d);
    }
  }
  return true;
}

// out (batch..., n, m) = a (batch..., n, k) @ b (batch..., k, m), batch dims already equal.
template <typename T> void batched_gemm(const Tensor& a_, const Tensor& b_, Tensor& out) {
  Tensor a = a_, b = b_;
  MatrixView ma, mb;
  int64_t sa = 0, sb = 0;
  if (!as_blas_matrix(a, ma) || !flat_batch_stride(a, sa))
    a = a.contiguous(), as_blas_matrix(a, ma), flat_batch_stride(a, sa);
  if (!as_blas_matrix(b, mb) || !flat_batch_stride(b, sb))
    b = b.contiguous(), as_blas_matrix(b, mb), flat_batch_stride(b, sb);
  const int64_t n = a.size(-2), k = a.size(-1), m = b.size(-1);
  const int64_t batch = out.numel() / std::max<int64_t>(n * m, 1);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  if (batch == 1) {
    kernels::gemm_parallel<T>(ma.trans, mb.trans, n, m, k, T(1), pa, ma.ld, pb, mb.ld, T(0), po, m);
    return;
  }
  // Many small products (attention): one task per group of batch entries, one BLAS call each.
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(n * m * k, 1));
  parallel_for(batch, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      kernels::gemm<T>(ma.trans, mb.trans, n, m, k, T(1), pa + i * sa, ma.ld, pb + i * sb, mb.ld, T(0), po + i * n * m,
                       m);
  });
}

}  // namespace

// out = a @ b;  da = g @ b^T, db = a^T @ g (each summed over the batch dims it was broadcast in)
Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  MG_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul", "both operands need at least 1 dim, got ", a_in.info(),
           " and ", b_in.info());
  MG_CHECK(a_in.dtype() == b_in.dtype(), "matmul", "dtype mismatch: ", a_in.info(), " and ", b_in.info());
  // 1-D operands as in PyTorch: a vector on the left is a row, on the right a column; removed after.
  Tensor a = a_in.dim() == 1 ? a_in.unsqueeze(0) : a_in;
  Tensor b = b_in.dim() == 1 ? b_in.unsqueeze(1) : b_in;
  MG_CHECK(a.size(-1) == b.size(-2), "matmul", "inner dimensions differ: ", a_in.info(), " @ ", b_in.info(),
           " (a's last dim ", a.size(-1), " must equal b's second-to-last dim ", b.size(-2), ")");
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {a.size(-2), a.size(-1)});
  sb.insert(sb.end(), {b.size(-2), b.size(-1)});
  so.insert(so.end(), {a.size(-2), b.size(-1)});
  Tensor out = Tensor::empty(so, a.dtype());
  MG_DISPATCH_FLOAT(a.dtype(), "matmul",
                    [&] { batched_gemm<scalar_t>(a.detach().expand(sa), b.detach().expand(sb), out); });
  record("matmul", out, {a, b},
         [a, b](const Tensor& g) {
           return std::vector<Tensor>{a.requires_grad() ? sum_to(matmul(g, b.transpose(-1, -2)), a.shape()) : Tensor(),
                                      b.requires_grad() ? sum_to(matmul(a.transpose(-1, -2), g), b.shape()) : Tensor()};
         },
         {a, b});
  if (a_in.dim() == 1) out = out.squeeze(-2);
  if (b_in.dim() == 1) out = out.squeeze(-1);
  return out;
}

// out (..., out) = x (..., in) @ weight^T + bias, as one GEMM over all leading dims.
// dx = g @ weight, dweight = g^T @ x (summed over rows), dbias = sum of g over rows.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  MG_CHECK(weight.dim() == 2, "linear", "weight must be (out_features, in_features), got ", weight.info());
  MG_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear", "input ", x.info(), " has ",
           x.dim() ? x.size(-1) : 0, " features but weight ", weight.info(), " expects ", weight.size(1));
  MG_CHECK(x.dtype() == weight.dtype(), "linear", "dtype mismatch: input ", x.info(), ", weight ", weight.info());
  MG_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "linear", "bias ", bias.info(),
           " does not match weight ", weight.info(), " (expected [", weight.size(0), "])");
  MG_CHECK(!bias.defined() || bias.dtype() == x.dtype(), "linear", "dtype mismatch: input ", x.info(), ", bias ",
           bias.info());
  const int64_t in = weight.size(1), outf = weight.size(0);
  // rows from the leading dims, not reshape's -1, which cannot infer a size when in_features is 0
  const int64_t rows = numel_of(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor x2 = x.detach().reshape({rows, in}).contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = outf;
  Tensor out = Tensor::empty(out_shape, x.dtype());
  MG_DISPATCH_FLOAT(x.dtype(), "linear", [&] {
    Tensor w = weight.detach().contiguous();
    scalar_t* po = out.data<scalar_t>();
    if (bias.defined()) {                     // the bias goes in with the product: no pass of its own over the output
      Tensor b = bias.detach().contiguous();  // read as an array: a strided view must be made dense
      kernels::gemm_parallel_bias<scalar_t>(false, true, rows, outf, in, scalar_t(1), x2.data<scalar_t>(), in,
                                            w.data<scalar_t>(), in, b.data<scalar_t>(), po, outf);
    } else {
      kernels::gemm_parallel<scalar_t>(false, true, rows, outf, in, scalar_t(1), x2.data<scalar_t>(), in,
                                       w.data<scalar_t>(), in, scalar_t(0), po, outf);
    }
  });
  Shape xs = x.shape();
  record("linear", out, {x, weight, bias},
         [x2, weight, bias, xs, rows, outf](const Tensor& g) {
           Tensor g2 = g.reshape({rows, outf});
           return std::vector<Tensor>{matmul(g2, weight).reshape(xs),
                                      weight.requires_grad() ? matmul(g2.transpose(0, 1), x2) : Tensor(),
                                      bias.defined() && bias.requires_grad() ? sum(g2, {0}) : Tensor()};
         },
         {x2, weight});
  return out;
}

}  // namespace mg
