#include "maxgrad/core/kernels/matmul.h"

#include <algorithm>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/gemm.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/reference/gemm.h"

namespace mg::kernels {

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

}  // namespace

template <typename T> void matmul(const Tensor& a_, const Tensor& b_, Tensor& out) {
  if (use_reference_kernels()) return reference::matmul<T>(a_, b_, out);
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
    gemm_parallel<T>(ma.trans, mb.trans, n, m, k, T(1), pa, ma.ld, pb, mb.ld, T(0), po, m);
    return;
  }
  // Many small products (attention): one task per group of batch entries, one BLAS call each.
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(n * m * k, 1));
  parallel_for(batch, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      gemm<T>(ma.trans, mb.trans, n, m, k, T(1), pa + i * sa, ma.ld, pb + i * sb, mb.ld, T(0), po + i * n * m, m);
  });
}

template <typename T> void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  if (use_reference_kernels()) return reference::linear<T>(x, w, bias, y);
  const int64_t rows = x.size(0), in = x.size(1), outf = w.size(0);
  if (bias.defined())
    gemm_parallel_bias<T>(false, true, rows, outf, in, T(1), x.data<T>(), in, w.data<T>(), in, bias.data<T>(),
                          y.data<T>(), outf);
  else
    gemm_parallel<T>(false, true, rows, outf, in, T(1), x.data<T>(), in, w.data<T>(), in, T(0), y.data<T>(), outf);
}

template void matmul<float>(const Tensor&, const Tensor&, Tensor&);
template void matmul<double>(const Tensor&, const Tensor&, Tensor&);
template void linear<float>(const Tensor&, const Tensor&, const Tensor&, Tensor&);
template void linear<double>(const Tensor&, const Tensor&, const Tensor&, Tensor&);

}  // namespace mg::kernels
