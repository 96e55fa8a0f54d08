// A dataset held entirely in memory (CIFAR binary batches, the synthetic set, or a decoded ImageFolder).
// CIFAR-10 train is 50,000 x 3,072 bytes = 154 MB: small enough to decode once instead of every epoch.
#pragma once

#include "maxgrad/data/dataset.h"

namespace mg::data {

class ImageSet final : public Dataset {
 public:
  ImageSet() = default;
  ImageSet(ImageShape shape, std::vector<std::string> classes);
  // Adopts whole buffers: pixels is (N,C,H,W), labels has N entries, each indexing classes.
  ImageSet(ImageShape shape, std::vector<std::string> classes, std::vector<uint8_t> pixels,
           std::vector<int64_t> labels);

  // Appends one image of shape().numel() bytes (CHW) with its label; the label must index classes().
  void add(const uint8_t* chw, int64_t label);
  void reserve(int64_t n);

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  int64_t label(int64_t i) const override;
  void load(int64_t i, uint8_t* chw_out) const override;
  ImageShape shape() const override { return shape_; }
  const std::vector<std::string>& classes() const override { return classes_; }

  const uint8_t* image(int64_t i) const;                          // CHW, borrowed
  const std::vector<uint8_t>& pixels() const { return pixels_; }  // (N,C,H,W)
  const std::vector<int64_t>& labels() const { return labels_; }

 private:
  void check_index(int64_t i) const;

  ImageShape shape_;
  std::vector<std::string> classes_;
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
};

// Decodes every image of `source` (in parallel) into memory, keeping order, labels and classes.
ImageSet to_memory(const Dataset& source);

}  // namespace mg::data
