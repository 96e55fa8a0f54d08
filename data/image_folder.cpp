#include "maxgrad/data/image_folder.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "maxgrad/core/runtime/tbb_for.h"  // header-only: tbb::parallel_for that ThreadSanitizer can follow
#include "maxgrad/data/class_name.h"

namespace mg::data {

namespace fs = std::filesystem;

bool is_image_file(const std::string& filename) {
  std::string ext = fs::path(filename).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

namespace {

std::vector<fs::path> sorted_children(const fs::path& dir, bool want_dirs) {
  std::vector<fs::path> out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (want_dirs ? e.is_directory() : (e.is_regular_file() && is_image_file(e.path().filename().string())))
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ImageFolder::ImageFolder(const std::string& root, ImageFolderOptions options) : options_(options) {
  if (!fs::is_directory(root)) throw DataError("ImageFolder: " + root + " is not a folder");
  if (options_.height <= 0 || options_.width <= 0)
    throw DataError("ImageFolder: image size must be positive, got " + std::to_string(options_.width) + "x" +
                    std::to_string(options_.height));
  for (const fs::path& class_dir : sorted_children(root, /*want_dirs=*/true)) {
    const std::vector<fs::path> images = sorted_children(class_dir, /*want_dirs=*/false);
    // An empty class would take a label index yet never be sampled: almost always a wrong root or extension.
    if (images.empty())
      throw DataError("ImageFolder: class folder " + class_dir.string() + " has no .jpg/.jpeg/.png/.bmp files");
    const int64_t label = static_cast<int64_t>(classes_.size());
    check_class_name(class_dir.filename().string(), "ImageFolder: " + root);
    classes_.push_back(class_dir.filename().string());
    for (const fs::path& p : images) files_.push_back({p.string(), label});
  }
  if (classes_.empty())
    throw DataError("ImageFolder: " + root + " has no class folders (expected " + root + "/<class>/<image>)");

  // Scan in parallel (50,000 headers take a moment serially); each worker records only its own slot.
  std::vector<std::string> error(files_.size());
  const ImageShape s = shape();
  mg::tbb_parallel_for(size_t{0}, files_.size(), [&](size_t i) {
    try {
      if (options_.full_scan) {
        std::vector<uint8_t> scratch(static_cast<size_t>(s.numel()));
        decode_image_rgb(files_[i].path, s.height, s.width, scratch.data(), options_.limits);
      } else {
        check_image_size(files_[i].path, read_image_header(files_[i].path, options_.limits), s.height, s.width);
      }
    } catch (const DataError& e) {
      error[i] = e.what();
    }
  });
  std::vector<Entry> kept;
  kept.reserve(files_.size());
  for (size_t i = 0; i < files_.size(); ++i) {
    if (error[i].empty()) {
      kept.push_back(std::move(files_[i]));
    } else if (options_.skip_bad) {
      skipped_.push_back(error[i]);
    } else {
      throw DataError("ImageFolder: " + error[i] + " (pass skip_bad to leave bad files out)");
    }
  }
  files_ = std::move(kept);
  std::vector<int64_t> per_class(classes_.size(), 0);
  for (const Entry& e : files_) ++per_class[static_cast<size_t>(e.label)];
  for (size_t c = 0; c < classes_.size(); ++c)
    if (per_class[c] == 0)
      throw DataError("ImageFolder: every image of class '" + classes_[c] + "' under " + root + " was bad");
}

void ImageFolder::check_index(int64_t i) const {
  if (i < 0 || i >= size())
    throw std::out_of_range("ImageFolder: index " + std::to_string(i) + " outside [0, " + std::to_string(size()) + ")");
}

int64_t ImageFolder::label(int64_t i) const {
  check_index(i);
  return files_[static_cast<size_t>(i)].label;
}

const std::string& ImageFolder::path(int64_t i) const {
  check_index(i);
  return files_[static_cast<size_t>(i)].path;
}

void ImageFolder::load(int64_t i, uint8_t* chw_out) const {
  decode_image_rgb(path(i), options_.height, options_.width, chw_out, options_.limits);
}

}  // namespace mg::data
