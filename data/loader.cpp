#include "maxgrad/data/loader.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "maxgrad/core/runtime/tbb_for.h"  // header-only: tbb::parallel_for that ThreadSanitizer can follow
#include "maxgrad/data/random.h"

namespace mg::data {

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  // Sample index ~0 is one no image has, so the shuffle stream is never an image's augmentation stream.
  SplitMix64 rng(stream_key(seed, static_cast<uint64_t>(epoch), ~uint64_t{0}));
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)], order[rng.below(static_cast<uint64_t>(i) + 1)]);
  return order;
}

DataLoader::DataLoader(const Dataset& dataset, LoaderOptions options) : dataset_(dataset), options_(options) {
  if (options_.batch_size <= 0)
    throw std::invalid_argument("DataLoader: batch_size must be positive, got " + std::to_string(options_.batch_size));
  if (options_.pad < 0 || options_.num_prefetch < 0)
    throw std::invalid_argument("DataLoader: pad and num_prefetch must be >= 0");
  if (options_.num_shards < 1 || options_.shard < 0 || options_.shard >= options_.num_shards)
    throw std::invalid_argument("DataLoader: shard " + std::to_string(options_.shard) + " of " +
                                std::to_string(options_.num_shards) + " shards; expected 0 <= shard < num_shards");
  if (dataset_.shape().channels > 3)
    throw std::invalid_argument("DataLoader: normalisation statistics exist for at most 3 channels, dataset has " +
                                std::to_string(dataset_.shape().channels));
  const auto policy = static_cast<int>(options_.auto_augment);
  if (policy < 0 || policy > static_cast<int>(AutoAugment::rand_augment))
    throw std::invalid_argument("DataLoader: auto_augment " + std::to_string(policy) +
                                " is none of AutoAugment::none, trivial_augment_wide, rand_augment");
  if (options_.auto_augment != AutoAugment::none && dataset_.shape().channels == 2)
    throw std::invalid_argument(
        "DataLoader: auto_augment needs 1 (grey) or 3 (RGB) channels, as torchvision's ops; "
        "the dataset has 2");
  if (options_.rand_augment_ops < 0 || options_.rand_augment_ops > 16)
    throw std::invalid_argument("DataLoader: rand_augment_ops must be in [0, 16], got " +
                                std::to_string(options_.rand_augment_ops));
  if (options_.rand_augment_magnitude < 0 || options_.rand_augment_magnitude >= kNumMagnitudeBins)
    throw std::invalid_argument("DataLoader: rand_augment_magnitude must be in [0, " +
                                std::to_string(kNumMagnitudeBins - 1) + "] (a magnitude bin), got " +
                                std::to_string(options_.rand_augment_magnitude));
  if (options_.mix.mixup_alpha > 0 || options_.mix.cutmix_alpha > 0) check_mixup_options(options_.mix);
  if (!(options_.erasing_prob >= 0 && options_.erasing_prob <= 1))
    throw std::invalid_argument("DataLoader: erasing_prob must be in [0, 1], got " +
                                std::to_string(options_.erasing_prob));
  if (options_.erasing_value != ErasingValue::zero && options_.erasing_value != ErasingValue::random)
    throw std::invalid_argument("DataLoader: erasing_value is neither ErasingValue::zero nor ErasingValue::random");
}

DataLoader::~DataLoader() { stop_worker(); }

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = dataset_.size(), bs = options_.batch_size;
  return options_.drop_last ? n / bs : (n + bs - 1) / bs;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  if (options_.shuffle) return epoch_permutation(dataset_.size(), options_.seed, epoch);
  std::vector<int64_t> order(static_cast<size_t>(dataset_.size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  return order;
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  stop_worker();
  if (first_batch < 0 || first_batch > batches_per_epoch())
    throw std::out_of_range("DataLoader::start_epoch: first_batch " + std::to_string(first_batch) + " outside [0, " +
                            std::to_string(batches_per_epoch()) + "]");
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  next_batch_ = first_batch;
  end_batch_ = batches_per_epoch();
  if (options_.num_prefetch > 0) worker_ = std::thread(&DataLoader::produce, this, first_batch, end_batch_);
}

void DataLoader::make_batch(int64_t batch_index, Batch& out) const {
  const ImageShape s = dataset_.shape();
  // This shard's contiguous share of the global batch [first, first + global_n).
  const int64_t first = batch_index * options_.batch_size;
  const int64_t global_n = std::min(options_.batch_size, dataset_.size() - first);
  const int64_t begin = first + global_n * options_.shard / options_.num_shards;
  const int64_t n = first + global_n * (options_.shard + 1) / options_.num_shards - begin;
  const int64_t numel = s.numel();
  out.n = n, out.c = s.channels, out.h = s.height, out.w = s.width;
  out.epoch = epoch_, out.batch_index = batch_index;
  out.x.resize(static_cast<size_t>(n * numel));
  out.y.resize(static_cast<size_t>(n));
  out.indices.assign(order_.begin() + begin, order_.begin() + begin + n);
  // Each image is independent (its randomness is keyed by its dataset index), so any split over threads
  // gives the same batch. The order is torchvision's: RandomCrop -> RandomHorizontalFlip -> TrivialAugmentWide
  // or RandAugment (uint8) -> ToTensor + Normalize -> RandomErasing.
  const LoaderOptions& o = options_;
  mg::tbb_parallel_for(tbb::blocked_range<int64_t>(0, n), [&](const tbb::blocked_range<int64_t>& r) {
    std::vector<uint8_t> raw(static_cast<size_t>(numel)), augmented(static_cast<size_t>(numel));
    for (int64_t i = r.begin(); i < r.end(); ++i) {
      const int64_t index = out.indices[static_cast<size_t>(i)];
      dataset_.load(index, raw.data());
      uint8_t* img = raw.data();
      if (o.augment) {
        const AugmentDraw d = draw_augment(o.seed, epoch_, index, o.pad);
        crop_flip(raw.data(), s.channels, s.height, s.width, o.pad, d, augmented.data());
        img = augmented.data();
      }
      if (o.auto_augment != AutoAugment::none)
        apply_ops(img, s.channels, s.height, s.width,
                  draw_auto_augment(o.auto_augment, o.seed, epoch_, index, s.height, s.width, o.rand_augment_ops,
                                    o.rand_augment_magnitude));
      float* x = out.x.data() + i * numel;
      normalize(img, s.channels, s.height, s.width, o.norm, x);
      if (o.erasing_prob > 0) {
        const ErasingBox box = draw_erasing(o.seed, epoch_, index, o.erasing_prob, s.height, s.width);
        erase(x, s.channels, s.height, s.width, box, o.erasing_value, o.seed, epoch_, index);
      }
      out.y[static_cast<size_t>(i)] = dataset_.label(index);
    }
  });
  // Mixup / CutMix pair whole images of the batch, so they come after the per-image work. The draw
  // is keyed by the global batch's index: every shard of a data-parallel run makes the same choice.
  out.targets.clear(), out.num_classes = 0;
  if (o.mix.mixup_alpha > 0 || o.mix.cutmix_alpha > 0) {
    const MixDraw d = draw_mix(o.mix, o.seed, epoch_, batch_index, s.height, s.width);
    out.num_classes = o.mix.num_classes;
    out.targets.resize(static_cast<size_t>(n * o.mix.num_classes));
    apply_mix(d, out.x.data(), n, s.channels, s.height, s.width, out.y.data(), o.mix, out.targets.data());
  }
}

void DataLoader::produce(int64_t first, int64_t end) {
  for (int64_t b = first; b < end; ++b) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || static_cast<int64_t>(ready_.size()) < options_.num_prefetch; });
      if (stop_) return;
    }
    Slot slot;
    try {
      make_batch(b, slot.batch);
    } catch (...) {
      slot.error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    const bool failed = slot.error != nullptr;
    ready_.push_back(std::move(slot));
    changed_.notify_all();
    if (failed) return;  // the consumer rethrows; later batches are not attempted
  }
}

bool DataLoader::next(Batch& out) {
  if (epoch_ < 0) throw std::logic_error("DataLoader::next: call start_epoch(epoch) first");
  if (next_batch_ >= end_batch_) return false;
  if (options_.num_prefetch == 0) {
    make_batch(next_batch_++, out);
    return true;
  }
  Slot slot;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !ready_.empty(); });
    slot = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
  }
  if (slot.error) {
    next_batch_ = end_batch_;  // the worker stopped; the epoch cannot go on
    std::rethrow_exception(slot.error);
  }
  out = std::move(slot.batch);
  ++next_batch_;
  return true;
}

void DataLoader::stop_worker() {
  if (worker_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    worker_.join();
  }
  ready_.clear();
  stop_ = false;
}

}  // namespace mg::data
