#include "maxgrad/core/runtime/isa.h"

#include "maxgrad/core/kernels/simd.h"

#ifndef MAXGRAD_ISA
#define MAXGRAD_ISA "generic"  // built without CMake
#endif

namespace mg {

std::string kernel_isa() { return MAXGRAD_ISA; }

std::string kernel_isa_description() {
#if defined(__AVX512F__)
  const char* features = "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
  const char* features = "AVX2, FMA";
#elif defined(__AVX__)
  const char* features = "AVX";
#elif defined(__SSE2__)
  const char* features = "SSE2";
#else
  const char* features = "no x86 vector extension";
#endif
  return kernel_isa() + " (" + features + ", " + std::to_string(kernels::kVecLanes<float>) + " floats a vector)";
}

namespace kernels {
template <typename T> int64_t loaded_vec_lanes() { return kVecLanes<T>; }
template int64_t loaded_vec_lanes<float>();
template int64_t loaded_vec_lanes<double>();
}  // namespace kernels

}  // namespace mg
