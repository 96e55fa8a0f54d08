// Batches from a Dataset: a seeded per-epoch shuffle, decoding and augmentation spread over oneTBB's threads,
// and a background thread that prepares the next batches while the caller trains on the current one.
//
//   DataLoader loader(train_set, {/*batch_size=*/128, /*shuffle=*/true, /*drop_last=*/true, /*seed=*/0,
//                                 /*augment=*/true});
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     for (Batch b; loader.next(b);) train_step(b.x /* (N,3,32,32) */, b.y /* (N) */);
//   }
//
// Everything random is a function of (seed, epoch, sample index), so the batches are identical whatever the
// thread count, prefetch depth or batch timing, and start_epoch(e, b) resumes exactly at batch b of epoch e.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "maxgrad/data/auto_augment.h"
#include "maxgrad/data/dataset.h"
#include "maxgrad/data/mixup.h"
#include "maxgrad/data/random_erasing.h"
#include "maxgrad/data/transforms.h"

namespace mg::data {

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;  // drop the last partial batch (the recipe does, so every step has batch_size)
  uint64_t seed = 0;
  bool augment = false;  // random crop from a `pad`-pixel zero-padded image + horizontal flip (p 0.5)
  int64_t pad = 4;
  Normalization norm = kCifar10Norm;
  int64_t num_prefetch = 2;  // batches prepared ahead by a background thread; 0 prepares inside next()
  // Data-parallel training (the role of PyTorch's DistributedSampler): process `shard` of
  // `num_shards` takes the contiguous share [g*shard/num_shards, g*(shard+1)/num_shards) of every
  // global batch of g images (g = batch_size, or what is left at the end), all processes drawing
  // from the same seeded permutation: together they see exactly the batches one process would.
  int64_t num_shards = 1, shard = 0;
  // Stronger augmentation, in torchvision's recipe order: crop + flip (augment) -> auto_augment on the uint8
  // image -> normalise -> random erasing. Each is independent of `augment` and draws from its own streams,
  // so switching one on changes no other draw. All off by default.
  AutoAugment auto_augment = AutoAugment::none;     // trivial_augment_wide, or rand_augment with the two below
  int64_t rand_augment_ops = 2;                     // ops per image, [0, 16]
  int64_t rand_augment_magnitude = 9;               // magnitude bin, [0, 30]
  double erasing_prob = 0;                          // RandomErasing's p, [0, 1]; timm's re_prob (0.25 is usual)
  ErasingValue erasing_value = ErasingValue::zero;  // zero (torchvision's value=0) or random (per pixel)
  // Mixup / CutMix of whole batches (timm's Mixup, mode 'batch'), after everything above; a batch then
  // carries soft targets. Off when both alphas are 0 (the default).
  MixupOptions mix{0, 0};
};

struct Batch {
  int64_t n = 0, c = 0, h = 0, w = 0;
  std::vector<float> x;          // (N,C,H,W), normalised
  std::vector<int64_t> y;        // (N) labels
  std::vector<int64_t> indices;  // (N) dataset index of each image
  int64_t epoch = 0, batch_index = 0;
  // With mixup or CutMix on: (N, num_classes) target probabilities (label smoothing included), for
  // cross_entropy's probability path; empty otherwise.
  std::vector<float> targets;
  int64_t num_classes = 0;
};

// The order an epoch visits a dataset of n items: a Fisher-Yates shuffle drawn from (seed, epoch).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

class DataLoader {
 public:
  // `dataset` is borrowed: it must outlive the loader.
  DataLoader(const Dataset& dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const;
  // Begins an epoch at batch `first_batch` (0 for a fresh epoch, the saved position when resuming).
  // Stops any prefetching left over from the previous epoch.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // Fills `out` with the next batch and returns true, or returns false at the end of the epoch.
  // An error while preparing the batch (e.g. a corrupt image) is rethrown here.
  bool next(Batch& out);

  // The dataset indices of an epoch, in visiting order.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  const LoaderOptions& options() const { return options_; }

 private:
  void make_batch(int64_t batch_index, Batch& out) const;
  void produce(int64_t first, int64_t end);
  void stop_worker();

  const Dataset& dataset_;
  LoaderOptions options_;
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
  int64_t next_batch_ = 0, end_batch_ = 0;

  // Prefetch queue, filled by worker_ and drained by next().
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Slot> ready_;
  bool stop_ = false;
};

}  // namespace mg::data
