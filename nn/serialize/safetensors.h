// Reader and writer of the safetensors format (huggingface/safetensors), with no dependencies:
// not on Tensor, not on a JSON library. The header's JSON is parsed by a small strict parser.
//
// Layout of a file:
//   8 bytes   N, the header length, unsigned 64-bit little-endian
//   N bytes   UTF-8 JSON: {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ...}
//             plus an optional "__metadata__": {str: str}; may be padded at the end with spaces
//   rest      the byte buffer; BEGIN/END are relative to its start, data is little-endian, C order
//
// Reading checks what the reference implementation checks (see shared/tools/safetensors_io.py):
// the byte ranges, sorted, must tile the buffer exactly, and every error names the file and entry.
//
// Integrity: the writer stores, in __metadata__, the XXH3-64 checksum of each tensor's bytes
// ("checksum.xxh3.NAME": 16 hex digits) and one of the rest of the header ("checksum.header.xxh3": the
// other metadata, each tensor's name, dtype and shape; see header_digest in safetensors.cpp). Other
// readers (PyTorch, the safetensors package) see ordinary string metadata. read() and parse() check
// every tensor of a file that has them and throw ChecksumError, naming the tensors, on a mismatch; a
// file without them (PyTorch's, older maxgrad's) loads with File::verified false, and read() notes
// that once per file on stderr. Either way the checksum keys are not in File::metadata.
//
//   mg::safetensors::File f = mg::safetensors::read("model.safetensors");
//   std::vector<float> w = mg::safetensors::to_float32(*f.find("fc.weight"));
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mg::safetensors {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The file's bytes do not match its checksums: it was damaged after it was written. `tensors` lists
// the tensors that fail ("__header__" for the header's names, shapes, dtypes and metadata).
struct ChecksumError : Error {
  ChecksumError(const std::string& what, std::vector<std::string> bad) : Error(what), tensors(std::move(bad)) {}
  std::vector<std::string> tensors;
};

// Metadata keys that begin with this belong to the integrity check.
constexpr const char* kChecksumPrefix = "checksum";

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL };

size_t itemsize(DType t);
const char* name(DType t);                       // "F32", ... as spelled in the header
DType dtype_from_name(const std::string& name);  // throws Error for an unknown name

struct Entry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;        // [] is a scalar (one element)
  std::vector<unsigned char> bytes;  // raw little-endian, C order: product(shape) * itemsize(dtype) bytes
};

struct File {
  std::vector<Entry> tensors;                   // read() returns them in the order of their bytes in the file
  std::map<std::string, std::string> metadata;  // without the checksum keys
  bool verified = false;                        // set by read()/parse(): the file had checksums and every one matched
  const Entry* find(const std::string& name) const;  // nullptr if absent
};

File read(const std::string& path);
// The same checks as read(), on a whole file already in memory; `what` names it in error messages.
File parse(const unsigned char* data, size_t size, const std::string& what);

// Lays tensors out by decreasing item size, then name (as the Python writer does), so each tensor
// is aligned to its item size; the header is padded with spaces to a multiple of 8 bytes.
// Checksums::Omit writes exactly what the Python reference writes (for tests and fuzz seeds).
enum class Checksums { Write, Omit };
std::vector<unsigned char> serialize(const File& f, Checksums c = Checksums::Write);
// Writes to a temporary file in the same directory, fsyncs it and renames it over `path`, so a
// reader (or a crash) never sees a half-written checkpoint.
void write(const std::string& path, const File& f);

// Widen a floating entry (F16, BF16, F32, F64) to float or double; throws Error for other dtypes.
std::vector<float> to_float32(const Entry& e);
std::vector<double> to_float64(const Entry& e);
float f16_to_float(uint16_t h);
float bf16_to_float(uint16_t h);

}  // namespace mg::safetensors
