// XXH3-64, the checksum of safetensors files written by maxgrad (nn/serialize/safetensors.h).
#pragma once
#include <cstddef>
#include <cstdint>

namespace mg::safetensors {

uint64_t xxh3_64(const void* data, size_t size);

}  // namespace mg::safetensors
