// Finding and loading train_cifar's data: CIFAR-10 in any of the three forms it comes in, or, when
// there is none, the built-in synthetic 10-class set, so that the main command always runs.
//
//   binary     DIR/cifar-10-batches-bin/ or DIR/data_batch_1.bin   (the official binary archive)
//   folders    DIR/train/<class>/*.jpg and DIR/test/<class>/*.jpg  (torchvision's ImageFolder layout)
//   tarballs   DIR/train.tar.gz and DIR/test.tar.gz of the folders (shared/data/cifar10), extracted
//              to a temporary folder, read into memory, and the folder removed again
#pragma once
#include <optional>
#include <ostream>
#include <string>

#include "maxgrad/data/image_set.h"

namespace mg::cli {

enum class DataFormat { none, binary, folders, tarballs };

DataFormat detect_data_format(const std::string& dir);

struct TrainData {
  bool synthetic = false;
  std::string dir;          // where CIFAR-10 was found ("" for the synthetic set)
  std::string description;  // for the user: "CIFAR-10 binary batches in data/cifar10"
  data::ImageSet train, test;
  data::ImageSet val;  // held out of the training images by --val-split (empty without it)
};

// `dir` is --data; without it $MAXGRAD_DATA and then ./data/cifar10 are tried, and when neither
// holds CIFAR-10 (or `synthetic` is set) the synthetic set is used, after telling `log` how to get
// the real one. val_split: the last N training images of each class become `val` and are not
// trained on (0: none). subset / eval_subset: the first N images of each class of what remains for
// training / of the test set (0: all). Throws data::DataError naming the folder when --data points
// at something that is not CIFAR-10.
TrainData load_train_data(const std::optional<std::string>& dir, bool synthetic, int64_t subset, int64_t eval_subset,
                          int64_t val_split, std::ostream& log);

// Printed when no CIFAR-10 is found: where to get it and how to check it.
std::string cifar10_instructions();

}  // namespace mg::cli
