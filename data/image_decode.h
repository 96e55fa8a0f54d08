// Decoding one image file into CHW uint8, with the project's own checks made before stb_image allocates:
// stb_image trusts the header, so a hostile or broken file could otherwise ask for gigabytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "maxgrad/data/dataset.h"

namespace mg::data {

struct DecodeLimits {
  int64_t max_side = 4096;            // larger images are refused before decoding (hard cap 16384)
  int64_t max_file_bytes = 64 << 20;  // larger files are refused before reading
};

// What the header says, read without decoding pixels.
struct ImageHeader {
  int width = 0, height = 0, channels = 0;
};

// Reads the header of `path`; throws DataError naming the file when it is unreadable, not a JPEG/PNG/BMP,
// or larger than `limits`.
ImageHeader read_image_header(const std::string& path, const DecodeLimits& limits = {});

// Throws DataError naming the file unless its header says height x width (there is no resizing).
void check_image_size(const std::string& path, const ImageHeader& header, int64_t height, int64_t width);

// Decodes `path` into `chw_out` (3 * height * width bytes, RGB planes; grey or RGBA files are converted to RGB).
// Throws DataError naming the file when it is corrupt, exceeds `limits`, or is not height x width.
void decode_image_rgb(const std::string& path, int64_t height, int64_t width, uint8_t* chw_out,
                      const DecodeLimits& limits = {});

// The same two on a file already in memory (`what` names it in errors; `size` is held to
// limits.max_file_bytes too). The functions above read the file, then call these; so do the fuzz tests.
ImageHeader image_header_from_memory(const uint8_t* bytes, size_t size, const std::string& what,
                                     const DecodeLimits& limits = {});
void decode_image_rgb_from_memory(const uint8_t* bytes, size_t size, const std::string& what, int64_t height,
                                  int64_t width, uint8_t* chw_out, const DecodeLimits& limits = {});

}  // namespace mg::data
