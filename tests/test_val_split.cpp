// --val-split's held-out images: the last N of each class, in the base set's order, and never also
// among the training images.
#include <doctest/doctest.h>

#include <set>

#include "maxgrad/data/image_set.h"
#include "maxgrad/data/subset.h"

using namespace mg::data;

TEST_CASE("hold_out_last_per_class: the last N images of each class, and the rest") {
  // 3 classes, labels 0,1,2,0,1,2,...: 5 images of class 0, 4 of 1, 4 of 2.
  ImageSet base({1, 1, 1}, {"a", "b", "c"});
  for (uint8_t i = 0; i < 13; ++i) base.add(&i, i % 3);
  const HeldOutSplit split = hold_out_last_per_class(base, 2);
  std::vector<int64_t> held, rest;
  for (int64_t i = 0; i < split.held_out.size(); ++i) held.push_back(split.held_out.base_index(i));
  for (int64_t i = 0; i < split.rest.size(); ++i) rest.push_back(split.rest.base_index(i));
  CHECK(held == std::vector<int64_t>{7, 8, 9, 10, 11, 12});  // class 0: 9, 12; class 1: 7, 10; class 2: 8, 11
  CHECK(rest == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6});
  std::set<int64_t> both(held.begin(), held.end());
  for (int64_t i : rest) CHECK(both.insert(i).second);
  CHECK(both.size() == 13);
  CHECK(hold_out_last_per_class(base, 0).held_out.size() == 0);
  CHECK_THROWS_AS(hold_out_last_per_class(base, 4), DataError);  // nothing of class 1 would be left
}
