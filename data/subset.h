// A view of some of another dataset's images, e.g. the first 100 of each class for a quick run.
#pragma once

#include <vector>

#include "maxgrad/data/dataset.h"

namespace mg::data {

class Subset final : public Dataset {
 public:
  // `base` is borrowed and must outlive the subset; indices refer to base and are checked here.
  Subset(const Dataset& base, std::vector<int64_t> indices);

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  int64_t label(int64_t i) const override { return base_.label(base_index(i)); }
  void load(int64_t i, uint8_t* chw_out) const override { base_.load(base_index(i), chw_out); }
  ImageShape shape() const override { return base_.shape(); }
  const std::vector<std::string>& classes() const override { return base_.classes(); }

  int64_t base_index(int64_t i) const;

 private:
  const Dataset& base_;
  std::vector<int64_t> indices_;
};

// The first `per_class` images of every class, in base order (fewer for a class that has fewer).
Subset first_per_class(const Dataset& base, int64_t per_class);

// A validation split held out of a training set: `held_out` holds the last `per_class` images of
// every class, `rest` everything else, both in base order. A class with no more than `per_class`
// images is refused (it would leave nothing of that class to train on).
struct HeldOutSplit {
  Subset rest, held_out;
};
HeldOutSplit hold_out_last_per_class(const Dataset& base, int64_t per_class);

}  // namespace mg::data
