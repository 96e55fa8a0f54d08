// Fuzzes image decoding (data/image_decode.h): stb_image behind the project's own checks (file size,
// a readable header, 1..max_side per side) made before anything is decoded. Whatever the header
// says, decoding either fills exactly 3 x H x W bytes or throws DataError.
// max_side is 512 here rather than the default 4096 only to keep executions fast: the checks are
// the same code, and a file claiming more is refused after reading its header, never decoded.
#include <cstdint>

#include "fuzz_common.h"
#include "maxgrad/data/image_decode.h"

using namespace mg::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DecodeLimits limits;
  limits.max_side = 512;
  ImageHeader h;
  try {
    h = image_header_from_memory(data, size, "fuzz image", limits);
  } catch (const DataError&) {
    return 0;
  }
  MG_FUZZ_CHECK(h.width >= 1 && h.height >= 1 && h.width <= 512 && h.height <= 512);
  MG_FUZZ_CHECK(h.channels >= 1 && h.channels <= 4);
  std::vector<uint8_t> chw(static_cast<size_t>(3 * h.width * h.height));
  try {
    decode_image_rgb_from_memory(data, size, "fuzz image", h.height, h.width, chw.data(), limits);
  } catch (const DataError&) {
  }
  // Asking for another size must be refused before decoding.
  bool refused = false;
  try {
    decode_image_rgb_from_memory(data, size, "fuzz image", h.height + 1, h.width, chw.data(), limits);
  } catch (const DataError&) {
    refused = true;
  }
  MG_FUZZ_CHECK(refused);
  return 0;
}
