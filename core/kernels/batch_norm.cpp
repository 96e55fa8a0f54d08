#include "maxgrad/core/kernels/batch_norm.h"

#include <algorithm>
#include <cmath>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/fast_math.h"
#include "maxgrad/core/kernels/lanes.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/reference/batch_norm.h"

namespace mg::kernels {

namespace {

constexpr int64_t kLanes = 16;  // two AVX-512 registers of doubles: two independent add chains

// ---- one row (a sample's values of one channel): every kernel below is a loop over rows of these ----

// A channel's rows are a whole sample apart and short (h*w values), too short for the hardware
// prefetcher to catch on before each row ends: the loops that read a channel from memory for the
// first time ask for the next row while working on this one.
template <typename T> inline void prefetch_row(const T* p, int64_t len) {
  for (int64_t i = 0; i < len; i += static_cast<int64_t>(64 / sizeof(T))) __builtin_prefetch(p + i);
}

// part += (x - m)^2 over one row, the difference taken in double
template <typename T> void add_sq_devs(const T* xr, int64_t len, double m, double* part) {
  add_lanes<kLanes>(len, part, [&](int64_t i) {
    const double d = static_cast<double>(xr[i]) - m;
    return d * d;
  });
}

template <typename T> void normalize_row(const T* xr, int64_t len, T a, T b, BnAct act, T* yr) {
  if (act == BnAct::Gelu)
    for (int64_t i = 0; i < len; ++i) yr[i] = vec_gelu(xr[i] * a + b);
  else
    for (int64_t i = 0; i < len; ++i) yr[i] = xr[i] * a + b;
}

// sum_g += sum of gy, sum_gxhat += sum of gy * xhat over one row of the channel, in kLanes partial
// sums (a separate loop with nothing else in it, so that the compiler keeps the partial sums in
// registers: fused into the GELU-gradient loop they were spilled to the stack and every add waited
// on a store).
template <typename T> void row_grad_sums(const T* gy, const T* x, int64_t len, T m, T rs, double* pg, double* pgx) {
  add_lanes<kLanes>(len, pg, [&](int64_t i) { return static_cast<double>(gy[i]); });
  add_lanes<kLanes>(len, pgx,
                    [&](int64_t i) { return static_cast<double>(gy[i]) * static_cast<double>((x[i] - m) * rs); });
}

template <typename T> void input_grad_row(const T* gr, const T* xr, int64_t len, T m, T rs, T k, T mg, T mgx, T* out) {
  for (int64_t i = 0; i < len; ++i) out[i] = k * (gr[i] - mg - (xr[i] - m) * rs * mgx);
}

// Every kernel takes channels in blocks. A channel's rows are a whole sample apart: with long rows
// (16x16 maps and up) one channel at a time keeps its values in cache from one pass to the next; with
// short ones (4x4: 16 values, one cache line 32 KB from the next) a channel alone is a walk of isolated
// lines, each waited for. A block of channels puts ~1 KB side by side in each sample (~128 KB of each
// tensor over a batch of 128, still in cache for the later passes). Each channel is summed exactly as
// alone (its rows in sample order, the same lanes): the same bits.
constexpr int64_t kMaxBlock = 16, kBlockBytes = 1024;
template <typename T> int64_t channel_block(const BnGeom& g) {
  return std::clamp<int64_t>(kBlockBytes / static_cast<int64_t>(sizeof(T)) / std::max<int64_t>(g.inner, 1), 1,
                             kMaxBlock);
}

// f(ch, offset of row (s, ch)) for the channels [c0, c1), sample by sample.
template <typename F> void for_rows(const BnGeom& g, int64_t c0, int64_t c1, F f) {
  for (int64_t s = 0; s < g.n; ++s)
    for (int64_t ch = c0; ch < c1; ++ch) f(ch, (s * g.c + ch) * g.inner);
}
// The same for the first pass over a block, which reads it from memory: it asks for the next sample's
// rows of p and of q (if not null) while working on these.
template <typename T, typename F>
void for_rows_fetching(const BnGeom& g, int64_t c0, int64_t c1, const T* p, const T* q, F f) {
  for (int64_t s = 0; s < g.n; ++s) {
    const int64_t next = ((s + 1) * g.c + c0) * g.inner, len = (c1 - c0) * g.inner;
    if (s + 1 < g.n) {
      prefetch_row(p + next, len);
      if (q) prefetch_row(q + next, len);
    }
    for (int64_t ch = c0; ch < c1; ++ch) f(ch, (s * g.c + ch) * g.inner);
  }
}

// The blocks of channels, in parallel: f(c0, c1).
template <typename T, typename F> void for_channel_blocks(const BnGeom& g, F f) {
  const int64_t cb = channel_block<T>(g), blocks = (g.c + cb - 1) / cb;
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) f(blk * cb, std::min(g.c, (blk + 1) * cb));
  });
}

}  // namespace

template <typename T> BnAffine<T> bn_affine(double mean, double var, double eps, const T* w, const T* b, int64_t ch) {
  BnAffine<T> a;
  a.rstd = static_cast<T>(1.0 / std::sqrt(var + eps));
  a.scale = w ? w[ch] * a.rstd : a.rstd;
  a.shift = (b ? b[ch] : T(0)) - static_cast<T>(mean) * a.scale;
  return a;
}

template <typename T> void bn_forward_training(const T* x, const BnGeom& g, double eps, const T* w, const T* b,
                                               BnAct act, T* y, T* mean, T* var, T* rstd, T* scale, T* shift) {
  const double count = static_cast<double>(g.n * g.inner);
  for_channel_blocks<T>(g, [&](int64_t c0, int64_t c1) {
    double part[kMaxBlock][kLanes] = {}, m[kMaxBlock];
    // two passes: no cancellation in the variance
    for_rows_fetching(g, c0, c1, x, static_cast<const T*>(nullptr), [&](int64_t ch, int64_t row) {
      add_lanes<kLanes>(g.inner, part[ch - c0], [&](int64_t i) { return static_cast<double>(x[row + i]); });
    });
    for (int64_t ch = c0; ch < c1; ++ch) m[ch - c0] = combine_lanes<kLanes>(part[ch - c0]) / count;
    for (int64_t ch = c0; ch < c1; ++ch) std::fill(part[ch - c0], part[ch - c0] + kLanes, 0.0);
    for_rows(g, c0, c1, [&](int64_t ch, int64_t row) { add_sq_devs(x + row, g.inner, m[ch - c0], part[ch - c0]); });
    for (int64_t ch = c0; ch < c1; ++ch) {
      const double v = combine_lanes<kLanes>(part[ch - c0]) / count;
      const BnAffine<T> a = bn_affine(m[ch - c0], v, eps, w, b, ch);
      mean[ch] = static_cast<T>(m[ch - c0]), var[ch] = static_cast<T>(v), rstd[ch] = a.rstd;
      scale[ch] = a.scale, shift[ch] = a.shift;
    }
    for_rows(g, c0, c1,
             [&](int64_t ch, int64_t row) { normalize_row(x + row, g.inner, scale[ch], shift[ch], act, y + row); });
  });
}

template <typename T> void bn_forward(const T* x, const BnGeom& g, bool training, const double* running_mean,
                                      const double* running_var, double eps, const T* w, const T* b, BnAct act, T* y,
                                      T* mean, T* var, T* rstd, T* scale, T* shift) {
  if (use_reference_kernels())
    return reference::batch_norm_forward(x, g, training, running_mean, running_var, eps, w, b, act, y, mean, var, rstd,
                                         scale, shift);
  if (training) return bn_forward_training(x, g, eps, w, b, act, y, mean, var, rstd, scale, shift);
  // y = x * scale + shift, with scale = w * rstd, shift = b - mean * scale, from the running stats
  for (int64_t ch = 0; ch < g.c; ++ch) {
    const double m = running_mean[ch], v = running_var[ch];
    const BnAffine<T> a = bn_affine(m, v, eps, w, b, ch);
    mean[ch] = static_cast<T>(m), var[ch] = static_cast<T>(v), rstd[ch] = a.rstd;
    scale[ch] = a.scale, shift[ch] = a.shift;
  }
  bn_normalize(x, g, scale, shift, y, act);
}

template <typename T> void bn_backward(const T* gy, const T* x, const BnGeom& g, const T* mean, const T* rstd,
                                       const T* w, const T* b, bool training, BnAct act, const T* scale, const T* shift,
                                       T* gx, double* sum_g, double* sum_gxhat) {
  if (use_reference_kernels())
    return reference::batch_norm_backward(gy, x, g, mean, rstd, w, b, training, act, gx, sum_g, sum_gxhat);
  const double count = static_cast<double>(g.n * g.inner);
  for_channel_blocks<T>(g, [&](int64_t c0, int64_t c1) {
    double pg[kMaxBlock][kLanes] = {}, pgx[kMaxBlock][kLanes] = {};
    // the gradient of the normalised value: gy, or with GELU gy * gelu'(x * scale + shift), stored in gx
    // row by row as the sums go (then overwritten by the input gradient)
    const T* gn = act == BnAct::Gelu ? gx : gy;
    if (act == BnAct::Gelu) {
      // The GELU derivative is ~60 instructions per vector, time enough to fetch the next sample's row
      // of this channel a line at a time as the loop goes. Asked for all at once before the row (as
      // for_rows_fetching does), the prefetches queue for line-fill buffers and the loop waits on them.
      const int64_t sample = g.c * g.inner, total = g.n * sample;
      constexpr int64_t kChunk = 64;  // values: 4 lines of float
      for_rows(g, c0, c1, [&](int64_t ch, int64_t row) {
        const T a = scale[ch], b = shift[ch];
        const T *xr = x + row, *gr = gy + row;
        T* out = gx + row;
        for (int64_t i0 = 0; i0 < g.inner; i0 += kChunk) {
          const int64_t i1 = std::min(g.inner, i0 + kChunk);
          if (row + sample < total) prefetch_row(gr + sample + i0, i1 - i0), prefetch_row(xr + sample + i0, i1 - i0);
          for (int64_t i = i0; i < i1; ++i) out[i] = gr[i] * vec_gelu_grad(xr[i] * a + b);
        }
        row_grad_sums(gn + row, xr, g.inner, mean[ch], rstd[ch], pg[ch - c0], pgx[ch - c0]);  // row in L1
      });
    } else {
      for_rows_fetching(g, c0, c1, gy, x, [&](int64_t ch, int64_t row) {
        row_grad_sums(gy + row, x + row, g.inner, mean[ch], rstd[ch], pg[ch - c0], pgx[ch - c0]);
      });
    }
    for (int64_t ch = c0; ch < c1; ++ch) {
      sum_g[ch] = combine_lanes<kLanes>(pg[ch - c0]);
      sum_gxhat[ch] = combine_lanes<kLanes>(pgx[ch - c0]);
    }
    for_rows(g, c0, c1, [&](int64_t ch, int64_t row) {
      const T k = w ? w[ch] * rstd[ch] : rstd[ch];
      const T mg = training ? static_cast<T>(sum_g[ch] / count) : T(0);
      const T mgx = training ? static_cast<T>(sum_gxhat[ch] / count) : T(0);
      input_grad_row(gn + row, x + row, g.inner, mean[ch], rstd[ch], k, mg, mgx, gx + row);  // in place when gn is gx
    });
  });
}

template <typename T> void bn_channel_sums(const T* x, const BnGeom& g, double* sum) {
  if (use_reference_kernels()) return reference::bn_channel_sums(x, g, sum);
  for_channel_blocks<T>(g, [&](int64_t c0, int64_t c1) {
    double part[kMaxBlock][kLanes] = {};
    for_rows_fetching(g, c0, c1, x, static_cast<const T*>(nullptr), [&](int64_t ch, int64_t row) {
      add_lanes<kLanes>(g.inner, part[ch - c0], [&](int64_t i) { return static_cast<double>(x[row + i]); });
    });
    for (int64_t ch = c0; ch < c1; ++ch) sum[ch] = combine_lanes<kLanes>(part[ch - c0]);
  });
}

template <typename T> void bn_channel_sq_dev_sums(const T* x, const BnGeom& g, const double* mean, double* sq) {
  if (use_reference_kernels()) return reference::bn_channel_sq_dev_sums(x, g, mean, sq);
  for_channel_blocks<T>(g, [&](int64_t c0, int64_t c1) {
    double part[kMaxBlock][kLanes] = {};
    for_rows_fetching(g, c0, c1, x, static_cast<const T*>(nullptr),
                      [&](int64_t ch, int64_t row) { add_sq_devs(x + row, g.inner, mean[ch], part[ch - c0]); });
    for (int64_t ch = c0; ch < c1; ++ch) sq[ch] = combine_lanes<kLanes>(part[ch - c0]);
  });
}

template <typename T> void bn_normalize(const T* x, const BnGeom& g, const T* scale, const T* shift, T* y, BnAct act) {
  if (use_reference_kernels()) return reference::bn_normalize(x, g, scale, shift, y, act);
  for_channel_blocks<T>(g, [&](int64_t c0, int64_t c1) {
    for_rows(g, c0, c1,
             [&](int64_t ch, int64_t row) { normalize_row(x + row, g.inner, scale[ch], shift[ch], act, y + row); });
  });
}

template <typename T> void bn_grad_sums(const T* gy, const T* x, const BnGeom& g, const T* mean, const T* rstd,
                                        double* sum_g, double* sum_gxhat) {
  if (use_reference_kernels()) return reference::bn_grad_sums(gy, x, g, mean, rstd, sum_g, sum_gxhat);
  for_channel_blocks<T>(g, [&](int64_t c0, int64_t c1) {
    double pg[kMaxBlock][kLanes] = {}, pgx[kMaxBlock][kLanes] = {};
    for_rows_fetching(g, c0, c1, gy, x, [&](int64_t ch, int64_t row) {
      row_grad_sums(gy + row, x + row, g.inner, mean[ch], rstd[ch], pg[ch - c0], pgx[ch - c0]);
    });
    for (int64_t ch = c0; ch < c1; ++ch) {
      sum_g[ch] = combine_lanes<kLanes>(pg[ch - c0]);
      sum_gxhat[ch] = combine_lanes<kLanes>(pgx[ch - c0]);
    }
  });
}

template <typename T> void bn_input_grad(const T* gy, const T* x, const BnGeom& g, const T* mean, const T* rstd,
                                         const T* k, const T* mg, const T* mgx, T* gx) {
  if (use_reference_kernels()) return reference::bn_input_grad(gy, x, g, mean, rstd, k, mg, mgx, gx);
  for_channel_blocks<T>(g, [&](int64_t c0, int64_t c1) {
    for_rows(g, c0, c1, [&](int64_t ch, int64_t row) {
      input_grad_row(gy + row, x + row, g.inner, mean[ch], rstd[ch], k[ch], mg[ch], mgx[ch], gx + row);
    });
  });
}

#define MG_INSTANTIATE(T)                                                                                              \
  template BnAffine<T> bn_affine<T>(double, double, double, const T*, const T*, int64_t);                              \
  template void bn_forward_training<T>(const T*, const BnGeom&, double, const T*, const T*, BnAct, T*, T*, T*, T*, T*, \
                                       T*);                                                                            \
  template void bn_forward<T>(const T*, const BnGeom&, bool, const double*, const double*, double, const T*, const T*, \
                              BnAct, T*, T*, T*, T*, T*, T*);                                                          \
  template void bn_backward<T>(const T*, const T*, const BnGeom&, const T*, const T*, const T*, const T*, bool, BnAct, \
                               const T*, const T*, T*, double*, double*);                                              \
  template void bn_channel_sums<T>(const T*, const BnGeom&, double*);                                                  \
  template void bn_channel_sq_dev_sums<T>(const T*, const BnGeom&, const double*, double*);                            \
  template void bn_normalize<T>(const T*, const BnGeom&, const T*, const T*, T*, BnAct);                               \
  template void bn_grad_sums<T>(const T*, const T*, const BnGeom&, const T*, const T*, double*, double*);              \
  template void bn_input_grad<T>(const T*, const T*, const BnGeom&, const T*, const T*, const T*, const T*, const T*,  \
                                 T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
