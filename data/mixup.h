// Mixup and CutMix with timm's semantics (timm.data.mixup.Mixup, mode='batch', cutmix_minmax=None): one
// decision per batch, each image paired with its mirror in the batch (image i with image N-1-i, x.flip(0)).
//
//   with probability prob the batch is mixed; when both alphas are > 0, cutmix with probability switch_prob
//   lam ~ Beta(alpha, alpha)
//   mixup:   x_i = lam x_i + (1 - lam) x_{N-1-i}
//   cutmix:  a box with sides sqrt(1 - lam) H and W around a uniform centre, clipped to the image, is copied
//            from x_{N-1-i} into x_i; lam becomes 1 - box area / (H W) (correct_lam)
//   targets: lam smooth(y_i) + (1 - lam) smooth(y_{N-1-i}), smooth(y) = onehot(y) (1 - e) + e / K
//
//   MixDraw d = draw_mix(opts, seed, b.epoch, b.batch_index, b.h, b.w);   // the batch's random choices
//   std::vector<float> t(b.n * opts.num_classes);
//   apply_mix(d, b.x.data(), b.n, b.c, b.h, b.w, b.y.data(), opts, t.data());
//   loss = cross_entropy(logits, Tensor::from_vector({t.begin(), t.end()}, {b.n, opts.num_classes}));
//   // float (N, K) targets take cross_entropy's probability path (core/ops.h)
//
// Pure functions of their arguments, so they can run in the data loader's prefetch thread and a resumed run
// sees the same draws. With data-parallel shards each process mixes its own share of the global batch, so
// pairs are formed within a process's share, as timm does per rank; draw_mix gives every process the same
// decision for the same (seed, epoch, batch_index) (timm draws per rank), unless the caller folds its rank
// into the seed.
#pragma once

#include <cstdint>

#include "maxgrad/data/random.h"

namespace mg::data {

// timm's Mixup arguments (its defaults are mixup_alpha 1, cutmix_alpha 0; these are the common recipe's).
struct MixupOptions {
  double mixup_alpha = 0.8, cutmix_alpha = 1.0, prob = 1.0, switch_prob = 0.5, label_smoothing = 0.1;
  int64_t num_classes = 10;
  bool correct_lam = true;  // lam from the clipped box's area (timm's default)
};

// One batch's draw. Rows y0..y1 and columns x0..x1 (end exclusive) are the cutmix box. Not mixed: lam = 1.
struct MixDraw {
  bool mixed = false;
  bool cutmix = false;
  double lam = 1.0;
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
};

// Throws mg::Error naming the field when an option is out of range (an alpha < 0, both alphas 0, a
// probability outside [0, 1], num_classes < 1).
void check_mixup_options(const MixupOptions& options);

// The draw for one batch, from the stream of (seed, epoch, batch_index) (data/random.h), in timm's order:
// u < prob?  then u < switch_prob?  then lam ~ Beta(alpha, alpha), then the cutmix centre (cy, cx).
MixDraw draw_mix(const MixupOptions& options, uint64_t seed, int64_t epoch, int64_t batch_index, int64_t height,
                 int64_t width);

// timm's rand_bbox + cutmix_bbox_and_lam for a given lam and centre cy in [0, H), cx in [0, W):
// cut = int(H sqrt(1 - lam)), rows clip(cy - cut/2, 0, H) .. clip(cy + cut/2, 0, H), likewise columns.
MixDraw cutmix_box(double lam, int64_t cy, int64_t cx, int64_t height, int64_t width, bool correct_lam = true);

// Mixes x (N,C,H,W), normalised, in place and writes targets (N, K = num_classes). y (N) in [0, K).
// An odd N pairs the middle image with itself (timm refuses odd batches). Instantiated for float and double.
template <typename T> void apply_mix(const MixDraw& draw, T* x, int64_t n, int64_t c, int64_t h, int64_t w,
                                     const int64_t* y, const MixupOptions& options, T* targets);

// Gamma(alpha, 1) by Marsaglia and Tsang (2000); alpha < 1 through Gamma(alpha + 1) U^(1/alpha).
double sample_gamma(SplitMix64& rng, double alpha);
// Beta(a, b) = X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
double sample_beta(SplitMix64& rng, double a, double b);

}  // namespace mg::data
