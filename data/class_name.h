// What a class name may be. Names come from files (a CIFAR-10 batches.meta.txt, ImageFolder's folder
// names) and travel on: into a checkpoint's metadata as one comma-separated list, into predict's
// output and into error messages. A name that cannot make that trip is refused where it is read, not
// after an epoch of training when the first checkpoint is written.
#pragma once
#include <string>

namespace mg::data {

constexpr size_t kMaxClassNameBytes = 128;

// Throws DataError naming `where` unless `name` is 1 to 128 bytes of valid UTF-8 without control
// characters or commas (the checkpoint's list separator).
void check_class_name(const std::string& name, const std::string& where);

}  // namespace mg::data
