// A folder of images laid out as root/<class>/<file>, decoded on demand (torchvision's ImageFolder layout).
// Class folders sorted by name give the label indices, and files within a class are sorted by name, so the
// order (and so a seeded shuffle) is the same on every machine whatever the file system lists first.
#pragma once

#include <string>
#include <vector>

#include "maxgrad/data/image_decode.h"

namespace mg::data {

struct ImageFolderOptions {
  int64_t height = 32, width = 32;  // every image must have this size; there is no resizing
  // Default: a bad file stops construction with an error naming it. With skip_bad it is left out and listed
  // in skipped_files() instead.
  bool skip_bad = false;
  // The scan at construction reads only headers (cheap); full_scan also decodes every image, which also
  // catches files whose header is fine but whose data is damaged, at the cost of one decode per image.
  bool full_scan = false;
  DecodeLimits limits;
};

class ImageFolder final : public Dataset {
 public:
  explicit ImageFolder(const std::string& root, ImageFolderOptions options = {});

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int64_t label(int64_t i) const override;
  // Throws DataError naming the file if it no longer decodes (possible even after the header scan).
  void load(int64_t i, uint8_t* chw_out) const override;
  ImageShape shape() const override { return {3, options_.height, options_.width}; }
  const std::vector<std::string>& classes() const override { return classes_; }

  const std::string& path(int64_t i) const;
  // Files left out by skip_bad, each with the reason.
  const std::vector<std::string>& skipped_files() const { return skipped_; }
  int64_t skipped() const { return static_cast<int64_t>(skipped_.size()); }

 private:
  struct Entry {
    std::string path;
    int64_t label;
  };
  void check_index(int64_t i) const;

  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::vector<Entry> files_;
  std::vector<std::string> skipped_;
};

// True for the extensions ImageFolder picks up: .jpg .jpeg .png .bmp in any letter case.
bool is_image_file(const std::string& filename);

}  // namespace mg::data
