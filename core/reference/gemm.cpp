#include "maxgrad/core/reference/gemm.h"

#include <algorithm>

#include "maxgrad/core/reference/elementwise.h"

namespace mg::reference {

template <typename T> void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                                const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        T av = ta ? a[p * lda + i] : a[i * lda + p];
        T bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        acc += static_cast<double>(av) * static_cast<double>(bv);
      }
      T prev = beta == T(0) ? T(0) : beta * c[i * ldc + j];  // beta 0 ignores C, as BLAS does
      c[i * ldc + j] = static_cast<T>(alpha * acc) + prev;
    }
}

template <typename T> void gemm_bias(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                                     int64_t lda, const T* b, int64_t ldb, const T* bias, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = bias[j];
  gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, T(1), c, ldc);
}

template <typename T> void matmul(const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t d = a.dim(), n = a.size(-2), k = a.size(-1), m = b.size(-1);
  const int64_t batch = out.numel() / std::max<int64_t>(n * m, 1);
  const Shape batch_shape(out.shape().begin(), out.shape().end() - 2);
  const Shape a_batch_strides(a.strides().begin(), a.strides().end() - 2);
  const Shape b_batch_strides(b.strides().begin(), b.strides().end() - 2);
  const int64_t a_row = a.strides()[d - 2], a_col = a.strides()[d - 1];
  const int64_t b_row = b.strides()[d - 2], b_col = b.strides()[d - 1];
  const T *pa = a.data<T>(), *pb = b.data<T>();
  T* po = out.data<T>();
  for (int64_t s = 0; s < batch; ++s) {
    const T* as = pa + offset_of(s, batch_shape, a_batch_strides);
    const T* bs = pb + offset_of(s, batch_shape, b_batch_strides);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += static_cast<double>(as[i * a_row + p * a_col]) * static_cast<double>(bs[p * b_row + j * b_col]);
        po[(s * n + i) * m + j] = static_cast<T>(acc);
      }
  }
}

template <typename T> void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  const int64_t rows = x.size(0), in = x.size(1), outf = w.size(0);
  const T *px = x.data<T>(), *pw = w.data<T>(), *pb = bias.defined() ? bias.data<T>() : nullptr;
  T* py = y.data<T>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < outf; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < in; ++i) acc += static_cast<double>(px[r * in + i]) * static_cast<double>(pw[o * in + i]);
      py[r * outf + o] = static_cast<T>(acc) + (pb ? pb[o] : T(0));
    }
}

#define MG_INSTANTIATE(T)                                                                                              \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*,         \
                        int64_t);                                                                                      \
  template void gemm_bias<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, const T*, \
                             T*, int64_t);                                                                             \
  template void matmul<T>(const Tensor&, const Tensor&, Tensor&);                                                      \
  template void linear<T>(const Tensor&, const Tensor&, const Tensor&, Tensor&);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::reference
