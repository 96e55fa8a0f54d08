// Fuzzes the safetensors reader (nn/serialize/safetensors.h) on whole files in memory: mg::safetensors::parse,
// the same header checks read() makes before it allocates. A file it accepts must also widen to
// floating point, convert to Tensors (serialize::tensor_from_entry), and survive serialize -> parse unchanged,
// its fresh checksums verified.
#include <cstdint>

#include "fuzz_common.h"
#include "maxgrad/nn/serialize/safetensors.h"
#include "maxgrad/nn/serialize/serialize.h"

namespace st = mg::safetensors;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  st::File f;
  try {
    f = st::parse(data, size, "fuzz.safetensors");
  } catch (const st::Error&) {
    return 0;  // refused, with a message: the expected outcome for most inputs
  }
  for (const st::Entry& e : f.tensors) {
    const bool floating = e.dtype == st::DType::F64 || e.dtype == st::DType::F32 || e.dtype == st::DType::F16 ||
                          e.dtype == st::DType::BF16;
    if (floating) MG_FUZZ_CHECK(st::to_float64(e).size() * st::itemsize(e.dtype) == e.bytes.size());
    try {
      mg::Tensor t = mg::serialize::tensor_from_entry(e);
      MG_FUZZ_CHECK(t.shape() == e.shape);
    } catch (const mg::Error&) {  // a dtype maxgrad does not load, or a shape too large to address
    }
  }
  std::vector<unsigned char> bytes;
  try {
    bytes = st::serialize(f);
  } catch (const st::Error&) {
    return 0;  // a name the writer refuses (e.g. ""), which the reader tolerates as the reference one does
  }
  const st::File g = st::parse(bytes.data(), bytes.size(), "round trip");  // must not throw
  MG_FUZZ_CHECK(g.verified && g.metadata == f.metadata && g.tensors.size() == f.tensors.size());
  for (const st::Entry& e : f.tensors) {
    const st::Entry* r = g.find(e.name);
    MG_FUZZ_CHECK(r && r->dtype == e.dtype && r->shape == e.shape && r->bytes == e.bytes);
  }
  return 0;
}
