#include "maxgrad/data/subset.h"

#include <stdexcept>
#include <string>

namespace mg::data {

Subset::Subset(const Dataset& base, std::vector<int64_t> indices) : base_(base), indices_(std::move(indices)) {
  for (int64_t i : indices_)
    if (i < 0 || i >= base_.size())
      throw std::out_of_range("Subset: index " + std::to_string(i) + " outside the base dataset's [0, " +
                              std::to_string(base_.size()) + ")");
}

int64_t Subset::base_index(int64_t i) const {
  if (i < 0 || i >= size())
    throw std::out_of_range("Subset: index " + std::to_string(i) + " outside [0, " + std::to_string(size()) + ")");
  return indices_[static_cast<size_t>(i)];
}

Subset first_per_class(const Dataset& base, int64_t per_class) {
  std::vector<int64_t> taken(base.classes().size(), 0), indices;
  for (int64_t i = 0; i < base.size(); ++i) {
    const auto c = static_cast<size_t>(base.label(i));
    if (c < taken.size() && taken[c] < per_class) {
      ++taken[c];
      indices.push_back(i);
    }
  }
  return Subset(base, std::move(indices));
}

HeldOutSplit hold_out_last_per_class(const Dataset& base, int64_t per_class) {
  if (per_class < 0) throw std::invalid_argument("hold_out_last_per_class: per_class must be >= 0");
  std::vector<int64_t> count(base.classes().size(), 0);
  for (int64_t i = 0; i < base.size(); ++i) ++count[static_cast<size_t>(base.label(i))];
  for (size_t c = 0; c < count.size(); ++c)
    if (per_class > 0 && count[c] <= per_class)
      throw DataError("a validation split of " + std::to_string(per_class) + " images per class leaves nothing of class '" +
                      base.classes()[c] + "' (" + std::to_string(count[c]) + " images) to train on");
  // Walking forward, image i of class c is held out once the images of c still to come number
  // fewer than per_class.
  std::vector<int64_t> seen(count.size(), 0), rest, held_out;
  for (int64_t i = 0; i < base.size(); ++i) {
    const auto c = static_cast<size_t>(base.label(i));
    (count[c] - seen[c]++ <= per_class ? held_out : rest).push_back(i);
  }
  return {Subset(base, std::move(rest)), Subset(base, std::move(held_out))};
}

}  // namespace mg::data
