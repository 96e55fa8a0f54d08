#include "maxgrad/data/image_decode.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
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

// Every allocation of stb_image goes through these, held to a budget set per decode (AllocBudget
// below). stb grows a PNG's inflate buffer by doubling for as long as the compressed data goes on,
// and accepts data beyond the image's size: a 97 KB PNG of a 1x1 image inflating to 100 MB took
// predict to 112 MB, and a 2 MB one would take 2 GB, in every decoding thread. A refused allocation
// makes stb fail with "outofmem", reported as a corrupt image.
namespace mg::data {
namespace {
thread_local size_t t_alloc_cap = SIZE_MAX;
}  // namespace
}  // namespace mg::data
//
// And every byte they hand out is zeroed: stb_image 2.27 decodes a JPEG scan with a Huffman table the
// file never defined from whatever its allocation held before (uninitialised memory; under the
// fuzzer's ASan, a symbol index of 16,711,935 read from a 256-entry table). Zeroed, such a table
// decodes every code as symbol 0 without consuming bits: a well-defined, wrong image.
static void* budget_malloc(size_t n) { return n > mg::data::t_alloc_cap ? nullptr : std::calloc(1, n); }
static void* budget_realloc(void* p, size_t old_n, size_t n) {
  if (n > mg::data::t_alloc_cap) return nullptr;
  auto* q = static_cast<unsigned char*>(std::realloc(p, n));
  if (q && n > old_n) std::memset(q + old_n, 0, n - old_n);
  return q;
}
#define STBI_MALLOC(n) budget_malloc(n)
#define STBI_REALLOC_SIZED(p, old_n, n) budget_realloc(p, old_n, n)
#define STBI_FREE(p) std::free(p)
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

namespace mg::data {

namespace {

void check_file_size(const std::string& what, uint64_t size, const DecodeLimits& limits) {
  // stb_image takes the length as an int, so 2 GiB is a hard cap whatever the limits say.
  if (size > static_cast<uint64_t>(limits.max_file_bytes) || size > static_cast<uint64_t>(INT_MAX))
    throw DataError("image " + what + ": " + std::to_string(size) + " bytes, over the limit of " +
                    std::to_string(std::min<int64_t>(limits.max_file_bytes, INT_MAX)));
}

// stb_image 2.27 (Debian 12's libstb) trusts the symbol counts of a JPEG Huffman table: a DHT
// segment whose 16 counts add up to more than 256 writes past the ends of its fixed-size tables
// (heap overflow; upstream stb_image checks this since 2.28). Found by tests/fuzz/fuzz_image.cpp.
// Every FF C4 byte pair in the file is read as stb would read a DHT segment there, so no table stb
// could ever parse (before or between scans) escapes the check, whatever the rest of the file holds.
bool jpeg_huffman_tables_fit(const uint8_t* p, size_t n) {
  size_t soi = 0;  // stb takes a file for a JPEG when it starts with FF (any number of them), then D8
  while (soi < n && p[soi] == 0xFF) ++soi;
  if (soi == 0 || soi >= n || p[soi] != 0xD8) return true;
  auto byte = [&](size_t i) -> int { return i < n ? p[i] : 0; };  // stb reads zeros past the end
  for (size_t m = 0; m + 1 < n; ++m) {
    if (p[m] != 0xFF || p[m + 1] != 0xC4) continue;
    size_t i = m + 2;
    int64_t left = ((byte(i) << 8) | byte(i + 1)) - 2;  // segment length, as stb counts it
    for (i += 2; left > 0 && i < n;) {
      ++i;  // table class and id
      int symbols = 0;
      for (int k = 0; k < 16; ++k) symbols += byte(i++);
      if (symbols > 256) return false;
      i += static_cast<size_t>(symbols);
      left -= 17 + symbols;
    }
  }
  return true;
}

// A progressive JPEG codes the image in scans, and stb_image walks every block of the image in
// each, even an empty one: a file of tens of thousands of empty scans would take minutes per MB,
// hours at the file-size cap. Real files have about 10 (libjpeg's default script); every FF DA
// (start of scan) byte pair is counted, so none stb could act on escapes the count.
constexpr int kMaxJpegScans = 256;

int jpeg_scan_count(const uint8_t* p, size_t n) {
  if (n < 2 || p[0] != 0xFF) return 0;  // not a JPEG
  int scans = 0;
  for (size_t m = 0; m + 1 < n && scans <= kMaxJpegScans; ++m) scans += p[m] == 0xFF && p[m + 1] == 0xDA;
  return scans;
}

// Two PNG chunk headers stb_image 2.27 acts on before it has checked the data is there (found by
// tests/fuzz/fuzz_image.cpp), so the chunks are walked here first, as stb walks them:
// - an IDAT chunk's length is allocated before it is read: a 100-byte file claiming a 2 GB chunk
//   makes it allocate 2 GB. Every chunk's data must lie inside the file (stb would fail there anyway).
// - an empty first IDAT chunk makes it memcpy to a null pointer (undefined behaviour).
const char* png_chunk_problem(const uint8_t* p, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n < 8 || std::memcmp(p, sig, 8) != 0) return nullptr;  // not a PNG
  auto be32 = [p](size_t i) {
    return (uint32_t{p[i]} << 24) | (uint32_t{p[i + 1]} << 16) | (uint32_t{p[i + 2]} << 8) | p[i + 3];
  };
  bool seen_idat = false;
  for (size_t i = 8; i + 8 <= n;) {
    const uint32_t length = be32(i), type = be32(i + 4);
    if (i + 8 + static_cast<size_t>(length) > n) return "a chunk runs past the end of the file";
    if (type == 0x49444154) {  // "IDAT"
      if (!seen_idat && length == 0) return "its first IDAT chunk is empty";
      seen_idat = true;
    }
    if (type == 0x49454E44) break;          // "IEND": stb reads no further
    i += 12 + static_cast<size_t>(length);  // length, type, data, CRC
  }
  return nullptr;
}

// The largest single allocation a decode of a width x height image from a file of `size` bytes may
// make: twice the file (stb gathers a PNG's IDAT chunks into one buffer, grown by doubling), twice the
// largest raw PNG data of that size (16-bit RGBA with a filter byte per row, interlacing's extra
// rows included, and the inflate buffer's doubling), plus 1 MB for the fixed tables of JPEG.
size_t decode_alloc_cap(size_t size, int64_t height, int64_t width) {
  const auto h = static_cast<size_t>(height), w = static_cast<size_t>(width);
  const size_t raw = (h + 7) * (1 + w * 8) + 7 * h;
  return 2 * std::max(size, raw) + (size_t{1} << 20);
}

struct AllocBudget {
  explicit AllocBudget(size_t cap) { t_alloc_cap = cap; }
  ~AllocBudget() { t_alloc_cap = SIZE_MAX; }
};

std::vector<uint8_t> read_bytes(const std::string& path, const DecodeLimits& limits) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw DataError("image " + path + ": cannot read (" + ec.message() + ")");
  check_file_size(path, size, limits);
  std::vector<uint8_t> bytes(size);
  std::ifstream in(path, std::ios::binary);
  if (!in || !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
    throw DataError("image " + path + ": cannot read");
  return bytes;
}

}  // namespace

ImageHeader image_header_from_memory(const uint8_t* bytes, size_t size, const std::string& what,
                                     const DecodeLimits& limits) {
  check_file_size(what, size, limits);
  if (!jpeg_huffman_tables_fit(bytes, size))
    throw DataError("image " + what + ": corrupt JPEG (a Huffman table lists more than 256 symbols)");
  if (jpeg_scan_count(bytes, size) > kMaxJpegScans)
    throw DataError("image " + what + ": JPEG of more than " + std::to_string(kMaxJpegScans) +
                    " scans (real ones have about 10; each costs a pass over the whole image)");
  ImageHeader h;
  if (size == 0 || !stbi_info_from_memory(bytes, static_cast<int>(size), &h.width, &h.height, &h.channels))
    throw DataError("image " + what + ": not a readable JPEG/PNG/BMP (" +
                    (size == 0 ? "empty file" : stbi_failure_reason()) + ")");
  if (h.width <= 0 || h.height <= 0 || h.width > limits.max_side || h.height > limits.max_side)
    throw DataError("image " + what + ": " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                    " is outside 1.." + std::to_string(limits.max_side) + " per side");
  return h;
}

ImageHeader read_image_header(const std::string& path, const DecodeLimits& limits) {
  const std::vector<uint8_t> bytes = read_bytes(path, limits);
  return image_header_from_memory(bytes.data(), bytes.size(), path, limits);
}

void check_image_size(const std::string& path, const ImageHeader& h, int64_t height, int64_t width) {
  if (h.height != height || h.width != width)
    throw DataError("image " + path + ": " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                    ", but this dataset's images are " + std::to_string(width) + "x" + std::to_string(height) +
                    " (resize the files first)");
}

void decode_image_rgb_from_memory(const uint8_t* bytes, size_t size, const std::string& what, int64_t height,
                                  int64_t width, uint8_t* chw_out, const DecodeLimits& limits) {
  const ImageHeader h = image_header_from_memory(bytes, size, what, limits);
  check_image_size(what, h, height, width);
  // Only here, not in the header check: reading the header, stb stops before the chunks at stake,
  // and a file cut short keeps passing the cheap header scan (ImageFolderOptions::full_scan).
  if (const char* problem = png_chunk_problem(bytes, size))
    throw DataError("image " + what + ": corrupt PNG (" + problem + ")");
  int w = 0, hh = 0, c = 0;
  AllocBudget budget(decode_alloc_cap(size, h.height, h.width));
  // Forcing 3 channels makes stb_image expand grey and drop alpha, so every image is RGB.
  std::unique_ptr<stbi_uc, void (*)(void*)> hwc(stbi_load_from_memory(bytes, static_cast<int>(size), &w, &hh, &c, 3),
                                                stbi_image_free);
  if (!hwc) throw DataError("image " + what + ": corrupt (" + std::string(stbi_failure_reason()) + ")");
  if (w != h.width || hh != h.height)  // header and decoder disagreeing means the file is not what it says
    throw DataError("image " + what + ": decoded size differs from its header");
  // File order is HWC (pixels interleaved); the dataset contract is CHW.
  const int64_t plane = height * width;
  for (int64_t p = 0; p < plane; ++p)
    for (int64_t ch = 0; ch < 3; ++ch) chw_out[ch * plane + p] = hwc.get()[p * 3 + ch];
}

void decode_image_rgb(const std::string& path, int64_t height, int64_t width, uint8_t* chw_out,
                      const DecodeLimits& limits) {
  const std::vector<uint8_t> bytes = read_bytes(path, limits);
  decode_image_rgb_from_memory(bytes.data(), bytes.size(), path, height, width, chw_out, limits);
}

}  // namespace mg::data
