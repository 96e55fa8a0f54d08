// The fast paths of conv2d (see core/kernels/conv2d.h for which shapes take which), and the two
// entry points that choose between them and the reference loops.
#include "maxgrad/core/kernels/conv2d.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "maxgrad/core/kernel_path.h"
#include "maxgrad/core/kernels/conv.h"
#include "maxgrad/core/kernels/conv_shifted.h"
#include "maxgrad/core/kernels/depthwise.h"
#include "maxgrad/core/kernels/gemm.h"
#include "maxgrad/core/kernels/scratch.h"
#include "maxgrad/core/reference/conv.h"
#include "maxgrad/core/runtime/parallel.h"

namespace mg::kernels {

namespace {

struct ConvArgs : Conv2dShape {
  bool depthwise() const { return groups == c && groups == o && groups > 1; }
  bool pointwise() const { return kh == 1 && kw == 1 && stride == 1 && pad == 0 && groups == 1; }
  ConvGeom geom() const { return {c / groups, h, w, kh, kw, stride, pad, ho, wo}; }
  bool shifted() const { return shifted_conv_fits(geom(), o, groups); }  // float only: callers check T
  ShiftedConv shifted_conv() const { return ShiftedConv(c, h, w, o, kh, kw, pad); }
  // Output rows per im2col block: the columns of a whole sample can be megabytes, which the GEMM
  // then reads from memory to pack; blocks of ~64K values stay in cache between im2col and GEMM.
  int64_t col_rows() const {
    const int64_t ck = c / groups * kh * kw;
    return std::max<int64_t>(1, std::min<int64_t>(ho, 65536 / std::max<int64_t>(ck * wo, 1)));
  }
};

constexpr int64_t kSamplesPerGroup = 8;  // weight-gradient partial sums: fixed, for determinism
// Below this many samples (batch-1 inference) a forward's samples leave threads idle, so each
// sample's product is split across them instead; the bits are the same either way.
constexpr int64_t kFewSamples = 4;

// The 1x1 path on small maps. One GEMM per sample packs the whole weight for only h*w columns: in
// the cifar preset's last stage a 512x128 weight for 16 columns, in squeeze-excitation for 1; and a
// weight gradient summed sample by sample reads and writes all of gw for every 16 products. So blocks
// of samples are gathered side by side into one (C, samples * h*w) matrix (a copy of the activations,
// far cheaper than repacking the weight) and multiplied at once. The block depends on the shapes
// alone, so the bits never depend on the thread count. `cols` is the number of columns aimed at; at
// least 4 blocks are kept for the threads to share; 1 means the plain per-sample path.
int64_t pointwise_block(int64_t n, int64_t hw, int64_t cols) {
  return std::clamp<int64_t>((cols + hw - 1) / hw, 1, std::max<int64_t>(1, n / 4));
}
constexpr int64_t kPointwiseCols = 256, kPointwiseGradCols = 512;

// buf (rows, count * hw) <- the samples s0 .. s0+count-1 of t (n, rows, hw), side by side; and back.
template <typename T> void gather_samples(const T* t, int64_t rows, int64_t hw, int64_t s0, int64_t count, T* buf) {
  for (int64_t s = 0; s < count; ++s)
    for (int64_t r = 0; r < rows; ++r) std::copy_n(t + ((s0 + s) * rows + r) * hw, hw, buf + (r * count + s) * hw);
}
template <typename T> void scatter_samples(const T* buf, int64_t rows, int64_t hw, int64_t s0, int64_t count, T* t) {
  for (int64_t s = 0; s < count; ++s)
    for (int64_t r = 0; r < rows; ++r) std::copy_n(buf + (r * count + s) * hw, hw, t + ((s0 + s) * rows + r) * hw);
}

// The (sample, channel) planes i0 .. i1-1 of a depthwise conv, i = sample * channels + channel, as
// runs of channels within one sample: fn(sample, c0, c1).
template <typename F> void for_sample_channels(int64_t i0, int64_t i1, int64_t channels, F fn) {
  for (int64_t i = i0; i < i1;) {
    const int64_t s = i / channels, c0 = i % channels, c1 = std::min(channels, c0 + (i1 - i));
    fn(s, c0, c1);
    i += c1 - c0;
  }
}

// y (n, o, ho, wo)
template <typename T> void forward(const ConvArgs& a, const T* x, const T* w, const T* bias, T* y) {
  const auto g = a.geom();
  const int64_t og = a.o / a.groups, cg = a.c / a.groups, ck = cg * a.kh * a.kw, hw_out = a.ho * a.wo;
  if (a.depthwise()) {
    parallel_for(a.n * a.c, 16, [&](int64_t i0, int64_t i1) {
      std::vector<T> scratch(static_cast<size_t>(dw_scratch_size(g)));
      for_sample_channels(i0, i1, a.c, [&](int64_t s, int64_t c0, int64_t c1) {
        dw_forward(x + s * a.c * a.h * a.w, w, bias, g, c0, c1, y + s * a.o * hw_out, scratch.data());
      });
    });
    return;
  }
  if (const int64_t bs = a.pointwise() ? pointwise_block(a.n, hw_out, kPointwiseCols) : 1; bs > 1) {
    parallel_for((a.n + bs - 1) / bs, 1, [&](int64_t b0, int64_t b1) {
      Scratch<T> xb(a.c * bs * hw_out), yb(a.o * bs * hw_out);
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int64_t s0 = blk * bs, cnt = std::min(bs, a.n - s0), cols = cnt * hw_out;
        gather_samples(x, a.c, hw_out, s0, cnt, xb.data());
        if (bias)
          for (int64_t o = 0; o < a.o; ++o) std::fill(yb.data() + o * cols, yb.data() + (o + 1) * cols, bias[o]);
        // yb (o, cols) = W (o, c) @ xb (c, cols) [+ bias]
        gemm<T>(false, false, a.o, cols, a.c, T(1), w, a.c, xb.data(), cols, bias ? T(1) : T(0), yb.data(), cols);
        scatter_samples(yb.data(), a.o, hw_out, s0, cnt, y);
      }
    });
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (a.shifted()) {
      const ShiftedConv sc = a.shifted_conv();
      parallel_for(a.n, 1, [&](int64_t s0, int64_t s1) {
        Scratch<float> xp(sc.padded_size), yp(sc.o * sc.np);
        for (int64_t s = s0; s < s1; ++s) {
          shifted_pad(x + s * a.c * a.h * a.w, sc, xp.data());
          shifted_forward(xp.data(), w, bias, sc, yp.data(), y + s * a.o * hw_out, a.n < kFewSamples);
        }
      });
      return;
    }
  }
  const int64_t rb = a.col_rows();
  const auto product = a.n < kFewSamples ? &gemm_parallel<T> : &gemm<T>;
  parallel_for(a.n, 1, [&](int64_t s0, int64_t s1) {
    Scratch<T> col(a.pointwise() ? 0 : ck * rb * a.wo);
    for (int64_t s = s0; s < s1; ++s) {
      const T* xs = x + s * a.c * a.h * a.w;
      T* ys = y + s * a.o * hw_out;
      for (int64_t gi = 0; gi < a.groups; ++gi) {
        const T* src = xs + gi * cg * a.h * a.w;
        const T* wg = w + gi * og * ck;
        T* yg = ys + gi * og * hw_out;
        T beta = 0;
        if (bias) {
          for (int64_t o = 0; o < og; ++o) std::fill(yg + o * hw_out, yg + (o + 1) * hw_out, bias[gi * og + o]);
          beta = 1;
        }
        if (a.pointwise()) {
          product(false, false, og, hw_out, ck, T(1), wg, ck, src, hw_out, beta, yg, hw_out);
          continue;
        }
        for (int64_t oh0 = 0; oh0 < a.ho; oh0 += rb) {  // y_g[:, block] = W_g (og, ck) @ col (ck, nb)
          const int64_t oh1 = std::min(a.ho, oh0 + rb), nb = (oh1 - oh0) * a.wo;
          im2col(src, g, col.data(), oh0, oh1);
          product(false, false, og, nb, ck, T(1), wg, ck, col.data(), nb, beta, yg + oh0 * a.wo, hw_out);
        }
      }
    }
  });
}

// gx (n, c, h, w) from gy (n, o, ho, wo)
template <typename T> void backward_input(const ConvArgs& a, const T* gy, const T* w, T* gx) {
  const auto g = a.geom();
  const int64_t og = a.o / a.groups, cg = a.c / a.groups, ck = cg * a.kh * a.kw, hw_out = a.ho * a.wo;
  if (a.depthwise()) {
    parallel_for(a.n * a.c, 16, [&](int64_t i0, int64_t i1) {
      std::vector<T> scratch(static_cast<size_t>(dw_scratch_size(g)));
      for_sample_channels(i0, i1, a.c, [&](int64_t s, int64_t c0, int64_t c1) {
        dw_backward_input(gy + s * a.o * hw_out, w, g, c0, c1, gx + s * a.c * a.h * a.w, scratch.data());
      });
    });
    return;
  }
  if (const int64_t bs = a.pointwise() ? pointwise_block(a.n, hw_out, kPointwiseCols) : 1; bs > 1) {
    parallel_for((a.n + bs - 1) / bs, 1, [&](int64_t b0, int64_t b1) {
      Scratch<T> gyb(a.o * bs * hw_out), gxb(a.c * bs * hw_out);
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int64_t s0 = blk * bs, cnt = std::min(bs, a.n - s0), cols = cnt * hw_out;
        gather_samples(gy, a.o, hw_out, s0, cnt, gyb.data());
        // gxb (c, cols) = W^T (c, o) @ gyb (o, cols)
        gemm<T>(true, false, a.c, cols, a.o, T(1), w, a.c, gyb.data(), cols, T(0), gxb.data(), cols);
        scatter_samples(gxb.data(), a.c, hw_out, s0, cnt, gx);
      }
    });
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (a.shifted()) {  // gx = gy padded by kh - 1 - pad, convolved with the flipped, transposed kernel
      const ShiftedConv sc = a.shifted_conv().transposed();
      Scratch<float> wt(a.c * a.o * a.kh * a.kw);
      shifted_flip_weight(w, a.o, a.c, a.kh, a.kw, wt.data());
      parallel_for(a.n, 1, [&](int64_t s0, int64_t s1) {
        Scratch<float> gyp(sc.padded_size), gxp(sc.o * sc.np);
        for (int64_t s = s0; s < s1; ++s) {
          shifted_pad(gy + s * a.o * hw_out, sc, gyp.data());
          shifted_forward(gyp.data(), wt.data(), nullptr, sc, gxp.data(), gx + s * a.c * a.h * a.w);
        }
      });
      return;
    }
  }
  const int64_t rb = a.col_rows();
  parallel_for(a.n, 1, [&](int64_t s0, int64_t s1) {
    Scratch<T> col(a.pointwise() ? 0 : ck * rb * a.wo);
    for (int64_t s = s0; s < s1; ++s) {
      for (int64_t gi = 0; gi < a.groups; ++gi) {
        const T* gys = gy + (s * a.o + gi * og) * hw_out;
        const T* wg = w + gi * og * ck;
        T* gxs = gx + (s * a.c + gi * cg) * a.h * a.w;
        if (a.pointwise()) {  // gx_g = W_g^T (ck, og) @ gy_g (og, hw_out)
          gemm<T>(true, false, ck, hw_out, og, T(1), wg, ck, gys, hw_out, T(0), gxs, hw_out);
          continue;
        }
        std::fill(gxs, gxs + cg * a.h * a.w, T(0));
        for (int64_t oh0 = 0; oh0 < a.ho; oh0 += rb) {  // col = W_g^T @ gy_g[:, block], added back into gx
          const int64_t oh1 = std::min(a.ho, oh0 + rb), nb = (oh1 - oh0) * a.wo;
          gemm<T>(true, false, ck, nb, og, T(1), wg, ck, gys + oh0 * a.wo, hw_out, T(0), col.data(), nb);
          col2im(col.data(), g, gxs, oh0, oh1);
        }
      }
    }
  });
}

// gw (o, c/groups, kh, kw) from gy and x
template <typename T> void backward_weight(const ConvArgs& a, const T* gy, const T* x, T* gw) {
  const auto g = a.geom();
  const int64_t og = a.o / a.groups, cg = a.c / a.groups, ck = cg * a.kh * a.kw, hw_out = a.ho * a.wo;
  if (a.depthwise()) {
    // Per channel the products are summed over the samples in order, then over the positions in
    // order (dw_reduce): no partials across threads needed. A task walks all samples of its block of
    // channels, one sample's planes a whole sample apart from the next: too far for the hardware
    // prefetcher, so each sample's block is a fresh wait on memory unless it is long. Blocks of ~4 KB
    // per sample (64 channels at 4x4, where 4 channels made 256 bytes) stream instead, and at least 8
    // blocks are left for the threads. Each channel's sums are the same whatever its block: the same
    // bits.
    const int64_t plane_bytes = a.h * a.w * static_cast<int64_t>(sizeof(T));
    const int64_t grain = std::clamp<int64_t>(4096 / plane_bytes, 4, std::max<int64_t>(4, a.c / 8));
    parallel_for(a.c, grain, [&](int64_t c0, int64_t c1) {
      std::vector<T> scratch(static_cast<size_t>(dw_scratch_size(g)));
      std::vector<T> acc(static_cast<size_t>((c1 - c0) * dw_acc_size(g)), T(0));
      for (int64_t s = 0; s < a.n; ++s)
        dw_backward_weight_acc(gy + s * a.o * hw_out, x + s * a.c * a.h * a.w, g, c0, c1, acc.data(), scratch.data());
      dw_reduce(acc.data(), g, c0, c1, gw);
    });
    return;
  }
  const int64_t wsize = a.o * ck;
  if (const int64_t bs = a.pointwise() ? pointwise_block(a.n, hw_out, kPointwiseGradCols) : 1; bs > 1) {
    // one partial per block of samples: gw_p (o, c) = gyb (o, cols) @ xb (c, cols)^T, then summed in order
    const int64_t n_parts = (a.n + bs - 1) / bs;
    Scratch<T> partial(n_parts * wsize);
    parallel_for(n_parts, 1, [&](int64_t p0, int64_t p1) {
      Scratch<T> gyb(a.o * bs * hw_out), xb(a.c * bs * hw_out);
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t s0 = p * bs, cnt = std::min(bs, a.n - s0), cols = cnt * hw_out;
        gather_samples(gy, a.o, hw_out, s0, cnt, gyb.data());
        gather_samples(x, a.c, hw_out, s0, cnt, xb.data());
        gemm<T>(false, true, a.o, a.c, cols, T(1), gyb.data(), cols, xb.data(), cols, T(0), partial.data() + p * wsize,
                a.c);
      }
    });
    parallel_for(wsize, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T s = 0;
        for (int64_t p = 0; p < n_parts; ++p) s += partial[p * wsize + i];
        gw[i] = s;
      }
    });
    return;
  }
  const int64_t n_parts = (a.n + kSamplesPerGroup - 1) / kSamplesPerGroup;
  std::vector<T> partial(static_cast<size_t>(n_parts * wsize), T(0));
  auto add_partials = [&](auto at) {  // gw[i] = the partials at at(i), summed in order
    parallel_for(wsize, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T s = 0;
        for (int64_t p = 0; p < n_parts; ++p) s += partial[static_cast<size_t>(p * wsize + at(i))];
        gw[i] = s;
      }
    });
  };
  if constexpr (std::is_same_v<T, float>) {
    if (a.shifted()) {  // partial (o, c*kh*kw) += per sample: dot products of gy' rows with shifted rows of x
      const ShiftedConv sc = a.shifted_conv();
      parallel_for(n_parts, 1, [&](int64_t p0, int64_t p1) {
        Scratch<float> xp(sc.padded_size), gyp(sc.o * sc.np);
        for (int64_t p = p0; p < p1; ++p)
          for (int64_t s = p * kSamplesPerGroup; s < std::min(a.n, (p + 1) * kSamplesPerGroup); ++s) {
            shifted_pad(x + s * a.c * a.h * a.w, sc, xp.data());
            shifted_spread(gy + s * a.o * hw_out, sc, gyp.data());
            shifted_weight_grad(gyp.data(), xp.data(), sc, partial.data() + p * wsize);
          }
      });
      add_partials([](int64_t i) { return i; });
      return;
    }
  }
  const int64_t rb = a.col_rows();
  parallel_for(n_parts, 1, [&](int64_t p0, int64_t p1) {
    Scratch<T> col(a.pointwise() ? 0 : ck * rb * a.wo);
    for (int64_t p = p0; p < p1; ++p) {
      T* acc = partial.data() + p * wsize;
      for (int64_t s = p * kSamplesPerGroup; s < std::min(a.n, (p + 1) * kSamplesPerGroup); ++s)
        for (int64_t gi = 0; gi < a.groups; ++gi) {
          const T* src = x + (s * a.c + gi * cg) * a.h * a.w;
          const T* gys = gy + (s * a.o + gi * og) * hw_out;
          T* accg = acc + gi * og * ck;
          if (a.pointwise()) {  // gw_g (og, ck) += gy_g (og, hw_out) @ x_g^T (hw_out, ck)
            gemm<T>(false, true, og, ck, hw_out, T(1), gys, hw_out, src, hw_out, T(1), accg, ck);
            continue;
          }
          // Transposed, gw_g^T (ck, og) += col (ck, nb) @ gy_g[:, block]^T: with og small (32 in the stem) this
          // shape keeps OpenBLAS's kernel busy where (og, ck) would not; the partial sums are kept transposed
          // (acc_t) and turned round when they are added up.
          for (int64_t oh0 = 0; oh0 < a.ho; oh0 += rb) {
            const int64_t oh1 = std::min(a.ho, oh0 + rb), nb = (oh1 - oh0) * a.wo;
            im2col(src, g, col.data(), oh0, oh1);
            gemm<T>(false, true, ck, og, nb, T(1), col.data(), nb, gys + oh0 * a.wo, hw_out, T(1), accg, og);
          }
        }
    }
  });
  add_partials([&](int64_t i) {
    // gw[i] is (group, o, k); the im2col path keeps each group's partial transposed, (k, o)
    const int64_t gi = i / (og * ck), o = i / ck % og, k = i % ck;
    return a.pointwise() ? i : gi * og * ck + k * og + o;
  });
}

}  // namespace

template <typename T> void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  if (use_reference_kernels()) return reference::conv2d_forward(s, x, w, bias, y);
  forward(ConvArgs{s}, x, w, bias, y);
}

template <typename T> void conv2d_backward(const Conv2dShape& s, const T* gy, const T* x, const T* w, T* gx, T* gw) {
  if (use_reference_kernels()) return reference::conv2d_backward(s, gy, x, w, gx, gw);
  if (gx) backward_input(ConvArgs{s}, gy, w, gx);
  if (gw) backward_weight(ConvArgs{s}, gy, x, gw);
}

#define MG_INSTANTIATE(T)                                                                \
  template void conv2d_forward<T>(const Conv2dShape&, const T*, const T*, const T*, T*); \
  template void conv2d_backward<T>(const Conv2dShape&, const T*, const T*, const T*, T*, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg::kernels
