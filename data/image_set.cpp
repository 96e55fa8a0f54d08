#include "maxgrad/data/image_set.h"

#include <tbb/parallel_for.h>

#include <cstring>
#include <utility>

#include "maxgrad/core/runtime/tbb_for.h"  // header-only: tbb::parallel_for that ThreadSanitizer can follow

namespace mg::data {

ImageSet::ImageSet(ImageShape shape, std::vector<std::string> classes) : shape_(shape), classes_(std::move(classes)) {}

namespace {
void check_label(int64_t label, size_t num_classes) {
  if (label < 0 || label >= static_cast<int64_t>(num_classes))
    throw DataError("ImageSet: label " + std::to_string(label) + " outside the " + std::to_string(num_classes) +
                    " classes");
}
}  // namespace

ImageSet::ImageSet(ImageShape shape, std::vector<std::string> classes, std::vector<uint8_t> pixels,
                   std::vector<int64_t> labels)
    : shape_(shape), classes_(std::move(classes)), pixels_(std::move(pixels)), labels_(std::move(labels)) {
  if (pixels_.size() != labels_.size() * static_cast<size_t>(shape_.numel()))
    throw DataError("ImageSet: " + std::to_string(pixels_.size()) + " pixel bytes do not hold " +
                    std::to_string(labels_.size()) + " images of " + std::to_string(shape_.numel()) + " bytes");
  for (int64_t l : labels_) check_label(l, classes_.size());
}

void ImageSet::add(const uint8_t* chw, int64_t label) {
  check_label(label, classes_.size());
  pixels_.insert(pixels_.end(), chw, chw + shape_.numel());
  labels_.push_back(label);
}

void ImageSet::reserve(int64_t n) {
  pixels_.reserve(static_cast<size_t>(n * shape_.numel()));
  labels_.reserve(static_cast<size_t>(n));
}

void ImageSet::check_index(int64_t i) const {
  if (i < 0 || i >= size())
    throw std::out_of_range("ImageSet: index " + std::to_string(i) + " outside [0, " + std::to_string(size()) + ")");
}

int64_t ImageSet::label(int64_t i) const {
  check_index(i);
  return labels_[static_cast<size_t>(i)];
}

const uint8_t* ImageSet::image(int64_t i) const {
  check_index(i);
  return pixels_.data() + i * shape_.numel();
}

void ImageSet::load(int64_t i, uint8_t* chw_out) const {
  std::memcpy(chw_out, image(i), static_cast<size_t>(shape_.numel()));
}

ImageSet to_memory(const Dataset& source) {
  const int64_t n = source.size(), bytes = source.shape().numel();
  std::vector<uint8_t> pixels(static_cast<size_t>(n * bytes));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  mg::tbb_parallel_for(int64_t{0}, n, [&](int64_t i) {
    source.load(i, pixels.data() + i * bytes);
    labels[static_cast<size_t>(i)] = source.label(i);
  });
  return ImageSet(source.shape(), source.classes(), std::move(pixels), std::move(labels));
}

}  // namespace mg::data
