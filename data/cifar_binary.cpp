#include "maxgrad/data/cifar_binary.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "maxgrad/data/class_name.h"

namespace mg::data {

namespace fs = std::filesystem;

const std::vector<std::string>& cifar10_classes() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

namespace {

// A whole file of at most `cap` bytes; a FIFO or device is refused before it is opened (reading one
// could block for ever), a larger file before anything is allocated.
std::vector<uint8_t> read_file(const fs::path& path, uintmax_t cap) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw DataError("CIFAR-10: " + path.string() + " is not a regular file");
  const auto size = fs::file_size(path, ec);
  if (!ec && size > cap)
    throw DataError("CIFAR-10: " + path.string() + " has " + std::to_string(size) + " bytes, more than the " +
                    std::to_string(cap) + " of a CIFAR-10 file");
  std::ifstream in(path, std::ios::binary);
  if (ec || !in) throw DataError("CIFAR-10: cannot open " + path.string());
  std::vector<uint8_t> bytes(size);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
    throw DataError("CIFAR-10: cannot read " + path.string());
  return bytes;
}

// batches.meta.txt has the ten names and may end in blank lines; a file of another length is not CIFAR-10's.
std::vector<std::string> read_class_names(const fs::path& meta) {
  if (!fs::exists(meta)) return cifar10_classes();
  const std::vector<uint8_t> bytes = read_file(meta, 4096);  // the real one has 61 bytes
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  for (const std::string& name : names) check_class_name(name, "CIFAR-10: " + meta.string());
  if (names.size() != 10)
    throw DataError("CIFAR-10: " + meta.string() + " lists " + std::to_string(names.size()) +
                    " class names, expected 10");
  return names;
}

}  // namespace

void read_cifar10_batch(const std::string& path, ImageSet& out) {
  if (out.shape().numel() != kCifarRecordBytes - 1)
    throw DataError("CIFAR-10: reading " + path + " into an ImageSet whose images are not 3x32x32");
  // The official batches hold 10,000 records each: 30,730,000 bytes.
  const std::vector<uint8_t> bytes = read_file(path, 10000 * kCifarRecordBytes);
  if (bytes.empty() || bytes.size() % kCifarRecordBytes != 0)
    throw DataError("CIFAR-10: " + path + " has " + std::to_string(bytes.size()) +
                    " bytes, not a positive multiple of the 3073-byte record (truncated or not a CIFAR-10 batch?)");
  const size_t records = bytes.size() / kCifarRecordBytes;
  out.reserve(out.size() + static_cast<int64_t>(records));
  for (size_t r = 0; r < records; ++r) {
    const uint8_t* rec = bytes.data() + r * kCifarRecordBytes;
    // Checked here, not by ImageSet::add, so the message can name the file and the record.
    if (rec[0] > 9)
      throw DataError("CIFAR-10: " + path + " record " + std::to_string(r) + " has label " + std::to_string(rec[0]) +
                      ", expected 0..9 (a CIFAR-100 file?)");
    out.add(rec + 1, rec[0]);
  }
}

ImageSet load_cifar10_binary(const std::string& dir, CifarSplit split) {
  fs::path root = dir;
  if (fs::is_directory(root / "cifar-10-batches-bin")) root /= "cifar-10-batches-bin";
  std::vector<std::string> files;
  if (split == CifarSplit::train)
    for (int b = 1; b <= 5; ++b) files.push_back("data_batch_" + std::to_string(b) + ".bin");
  else
    files.push_back("test_batch.bin");
  // Check every file first: a missing batch 5 should fail at once, not after reading the first four.
  for (const std::string& f : files)
    if (!fs::is_regular_file(root / f))
      throw DataError("CIFAR-10: missing " + (root / f).string() + " (the " +
                      (split == CifarSplit::train ? "train" : "test") +
                      " split needs it; pass the folder holding the .bin files or its parent)");
  ImageSet out(ImageShape{3, 32, 32}, read_class_names(root / "batches.meta.txt"));
  for (const std::string& f : files) read_cifar10_batch((root / f).string(), out);
  return out;
}

}  // namespace mg::data
