// The instruction set the kernels were compiled for. A native build compiles them for the build
// machine; a portable build on x86-64 compiles them for three levels, and the dynamic loader loads
// the best one this CPU supports when the program starts (CMakeLists.txt, "instruction sets").
#pragma once
#include <string>

namespace mg {

// The loaded kernels' level: "native", "generic", or in a portable build "x86-64", "x86-64-v3" or
// "x86-64-v4".
std::string kernel_isa();

// The same with what it means, for people: "x86-64-v4 (AVX-512, 16 floats a vector)".
std::string kernel_isa_description();

}  // namespace mg
