// xxHash (Debian's libxxhash-dev) compiled into this file from its header, as its README allows:
// no library for maxgrad or its users to link. A file of its own so that the warnings switched off
// for it in CMakeLists.txt are off for xxHash alone: GCC 12 warns, wrongly, that the AVX-512
// intrinsics of xxHash's vector loop read an uninitialised value.
#include "maxgrad/nn/serialize/xxh3.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace mg::safetensors {

uint64_t xxh3_64(const void* data, size_t size) { return XXH3_64bits(data, size); }

}  // namespace mg::safetensors
