// The official CIFAR-10 binary format ("CIFAR-10 binary version" from the dataset's page): each record is
// 1 label byte followed by 3,072 pixel bytes, 1,024 per channel (R, G, B planes, rows top to bottom), i.e.
// already CHW. data_batch_1..5.bin are the 50,000 training images, test_batch.bin the 10,000 test images, and
// batches.meta.txt lists the class names one per line.
#pragma once

#include <string>

#include "maxgrad/data/image_set.h"

namespace mg::data {

enum class CifarSplit { train, test };

constexpr int64_t kCifarRecordBytes = 1 + 3 * 32 * 32;

// The ten CIFAR-10 class names in label order, used when batches.meta.txt is absent.
const std::vector<std::string>& cifar10_classes();

// Reads a split from `dir`, which is either the folder holding the .bin files or its parent holding
// cifar-10-batches-bin/. Throws DataError naming the file when one is missing, truncated (size not a multiple
// of 3,073 bytes) or holds a label above 9.
ImageSet load_cifar10_binary(const std::string& dir, CifarSplit split);

// Appends the records of one batch file to `out` (whose shape must be 3x32x32 and classes ten).
void read_cifar10_batch(const std::string& path, ImageSet& out);

}  // namespace mg::data
