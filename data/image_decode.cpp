#include "data/image_decode.h"

#include <filesystem>
#include <fstream>
#include <memory>

// Only the formats ImageFolder accepts are compiled in: less parser code reachable from untrusted files.
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO  // files are read here, with a size cap, then decoded from memory
// stb_image's own hard cap, a second line behind DecodeLimits::max_side (checked on the header first).
#define STBI_MAX_DIMENSIONS 16384
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

namespace mg::data {

namespace {

std::vector<uint8_t> read_bytes(const std::string& path, const DecodeLimits& limits) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw DataError("image " + path + ": cannot read (" + ec.message() + ")");
  if (static_cast<int64_t>(size) > limits.max_file_bytes)
    throw DataError("image " + path + ": " + std::to_string(size) + " bytes, over the limit of " +
                    std::to_string(limits.max_file_bytes));
  std::vector<uint8_t> bytes(size);
  std::ifstream in(path, std::ios::binary);
  if (!in || !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
    throw DataError("image " + path + ": cannot read");
  return bytes;
}

ImageHeader header_of(const std::string& path, const std::vector<uint8_t>& bytes, const DecodeLimits& limits) {
  ImageHeader h;
  if (bytes.empty() ||
      !stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &h.width, &h.height, &h.channels))
    throw DataError("image " + path + ": not a readable JPEG/PNG/BMP (" +
                    (bytes.empty() ? "empty file" : stbi_failure_reason()) + ")");
  if (h.width <= 0 || h.height <= 0 || h.width > limits.max_side || h.height > limits.max_side)
    throw DataError("image " + path + ": " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                    " is outside 1.." + std::to_string(limits.max_side) + " per side");
  return h;
}

}  // namespace

ImageHeader read_image_header(const std::string& path, const DecodeLimits& limits) {
  return header_of(path, read_bytes(path, limits), limits);
}

void check_image_size(const std::string& path, const ImageHeader& h, int64_t height, int64_t width) {
  if (h.height != height || h.width != width)
    throw DataError("image " + path + ": " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                    ", but this dataset's images are " + std::to_string(width) + "x" + std::to_string(height) +
                    " (resize the files first)");
}

void decode_image_rgb(const std::string& path, int64_t height, int64_t width, uint8_t* chw_out,
                      const DecodeLimits& limits) {
  const std::vector<uint8_t> bytes = read_bytes(path, limits);
  const ImageHeader h = header_of(path, bytes, limits);
  check_image_size(path, h, height, width);
  int w = 0, hh = 0, c = 0;
  // Forcing 3 channels makes stb_image expand grey and drop alpha, so every image is RGB.
  std::unique_ptr<stbi_uc, void (*)(void*)> hwc(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &hh, &c, 3), stbi_image_free);
  if (!hwc) throw DataError("image " + path + ": corrupt (" + std::string(stbi_failure_reason()) + ")");
  if (w != h.width || hh != h.height)  // header and decoder disagreeing means the file is not what it says
    throw DataError("image " + path + ": decoded size differs from its header");
  // File order is HWC (pixels interleaved); the dataset contract is CHW.
  const int64_t plane = height * width;
  for (int64_t p = 0; p < plane; ++p)
    for (int64_t ch = 0; ch < 3; ++ch) chw_out[ch * plane + p] = hwc.get()[p * 3 + ch];
}

}  // namespace mg::data
