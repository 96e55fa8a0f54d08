#include "examples/common/train_data.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "examples/common/archive.h"
#include "maxgrad/data/cifar_binary.h"
#include "maxgrad/data/image_folder.h"
#include "maxgrad/data/subset.h"
#include "maxgrad/data/synthetic.h"

namespace mg::cli {

namespace fs = std::filesystem;
using data::DataError;

DataFormat detect_data_format(const std::string& dir) {
  const fs::path d(dir);
  std::error_code ec;
  if (fs::is_directory(d / "cifar-10-batches-bin", ec) || fs::is_regular_file(d / "data_batch_1.bin", ec))
    return DataFormat::binary;
  if (fs::is_directory(d / "train", ec) && fs::is_directory(d / "test", ec)) return DataFormat::folders;
  if (fs::is_regular_file(d / "train.tar.gz", ec) && fs::is_regular_file(d / "test.tar.gz", ec))
    return DataFormat::tarballs;
  return DataFormat::none;
}

std::string cifar10_instructions() {
  return "To train on CIFAR-10, get the official binary archive\n"
         "  https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz  (md5 c32a1d4ab5d03f1284b67883e8d87530)\n"
         "and unpack it into ./data/cifar10 (scripts/get_cifar10.sh downloads, verifies and unpacks it), or pass\n"
         "--data DIR, or set MAXGRAD_DATA=DIR.";
}

namespace {

// The first `per_class` images of each class, copied into memory (0: all of them).
data::ImageSet take(const data::Dataset& set, int64_t per_class) {
  if (per_class <= 0) return data::to_memory(set);
  return data::to_memory(data::first_per_class(set, per_class));
}

// The training images: the last `val_split` of each class held out as out.val, then the first
// `per_class` of each class of the rest.
void take_train(const data::Dataset& set, int64_t per_class, int64_t val_split, TrainData& out) {
  if (val_split <= 0) {
    out.train = take(set, per_class);
    return;
  }
  const data::HeldOutSplit split = data::hold_out_last_per_class(set, val_split);
  out.train = take(split.rest, per_class);
  out.val = data::to_memory(split.held_out);
}

// A temporary folder, removed with everything in it when this goes out of scope.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "maxgrad_cifar_XXXXXX").string();
    if (!mkdtemp(tmpl.data()))
      throw DataError("cannot create a temporary folder in " + fs::temp_directory_path().string());
    path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void load_folders(const std::string& root, int64_t subset, int64_t eval_subset, int64_t val_split, TrainData& out) {
  take_train(data::ImageFolder((fs::path(root) / "train").string()), subset, val_split, out);
  out.test = take(data::ImageFolder((fs::path(root) / "test").string()), eval_subset);
}

void load_cifar(const std::string& dir, DataFormat format, int64_t subset, int64_t eval_subset, int64_t val_split,
                TrainData& out) {
  out.dir = fs::absolute(dir).string();  // a resumed run may start from another folder
  switch (format) {
    case DataFormat::binary:
      out.description = "CIFAR-10 binary batches in " + dir;
      take_train(data::load_cifar10_binary(dir, data::CifarSplit::train), subset, val_split, out);
      out.test = take(data::load_cifar10_binary(dir, data::CifarSplit::test), eval_subset);
      return;
    case DataFormat::folders:
      out.description = "CIFAR-10 image folders in " + dir;
      load_folders(dir, subset, eval_subset, val_split, out);
      return;
    case DataFormat::tarballs: {
      out.description = "CIFAR-10 image archives in " + dir;
      ScratchDir scratch;
      extract_archive((fs::path(dir) / "train.tar.gz").string(), scratch.path);
      extract_archive((fs::path(dir) / "test.tar.gz").string(), scratch.path);
      load_folders(scratch.path, subset, eval_subset, val_split, out);
      return;
    }
    case DataFormat::none: break;
  }
  throw DataError("--data " + dir +
                  ": no CIFAR-10 there; expected one of\n"
                  "  " +
                  dir + "/cifar-10-batches-bin/ or " + dir +
                  "/data_batch_1.bin  (binary batches)\n"
                  "  " +
                  dir + "/train/<class>/ and " + dir +
                  "/test/<class>/          (image folders)\n"
                  "  " +
                  dir + "/train.tar.gz and " + dir + "/test.tar.gz              (archives of the folders)");
}

}  // namespace

TrainData load_train_data(const std::optional<std::string>& dir, bool synthetic, int64_t subset, int64_t eval_subset,
                          int64_t val_split, std::ostream& log) {
  TrainData out;
  if (dir && !synthetic) {
    load_cifar(*dir, detect_data_format(*dir), subset, eval_subset, val_split, out);
    return out;
  }
  if (!synthetic) {
    std::vector<std::string> tried;
    if (const char* env = std::getenv("MAXGRAD_DATA"); env && *env) tried.push_back(env);
    tried.push_back("data/cifar10");
    for (const std::string& d : tried)
      if (const DataFormat f = detect_data_format(d); f != DataFormat::none) {
        load_cifar(d, f, subset, eval_subset, val_split, out);
        return out;
      }
    log << "No CIFAR-10 found (looked in " << (tried.size() == 2 ? "$MAXGRAD_DATA=" + tried[0] + " and " : "")
        << "./data/cifar10).\n"
        << cifar10_instructions() << "\nTraining on the built-in synthetic 10-class image set instead.\n";
  }
  // Sizes as CIFAR-10's; image i depends only on (seed, i), so a subset is simply a shorter set.
  // Different seeds keep the test images apart from the training images.
  const int64_t n_train = subset > 0 ? std::min<int64_t>(10 * subset, 50000) : 50000;
  const int64_t n_test = eval_subset > 0 ? std::min<int64_t>(10 * eval_subset, 10000) : 10000;
  out.synthetic = true;
  out.description = "the built-in synthetic set (not CIFAR-10)";
  take_train(data::make_synthetic(n_train + 10 * std::max<int64_t>(val_split, 0), /*seed=*/1), subset, val_split, out);
  out.test = data::make_synthetic(n_test, /*seed=*/2);
  return out;
}

}  // namespace mg::cli
