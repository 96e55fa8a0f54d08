// The one interface every image source implements, so the loader can decode any of them in parallel.
// Images are uint8 in CHW order (channel planes, like a tensor), not HWC as files store them: the loader
// normalises straight into an (N,C,H,W) float batch without another transpose.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mg::data {

// Every data problem a user can fix (missing file, truncated batch, corrupt image) is reported as DataError,
// and its message names the file, so a caller can tell bad input from a bug.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Geometry shared by all images of a dataset: a batch is one dense block, so sizes must agree.
struct ImageShape {
  int64_t channels = 3, height = 32, width = 32;
  int64_t numel() const { return channels * height * width; }
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // Cheap (no decoding): used to build per-class subsets and label vectors.
  virtual int64_t label(int64_t i) const = 0;
  // Writes image i, shape().numel() bytes in CHW order. Must be safe to call from many threads at once.
  virtual void load(int64_t i, uint8_t* chw_out) const = 0;
  virtual ImageShape shape() const = 0;
  // Class names; index = label.
  virtual const std::vector<std::string>& classes() const = 0;
};

}  // namespace mg::data
