// Element types a Tensor can hold. float32 is the default; float64 exists so gradcheck can
// compare against finite differences precisely; int64 holds indices and labels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mg {

enum class DType { Float32, Float64, Int64 };

inline size_t itemsize(DType t) { return t == DType::Float32 ? 4 : 8; }
inline bool is_floating(DType t) { return t != DType::Int64; }

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
  }
  return "?";
}

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };

}  // namespace mg

// Runs BODY with `scalar_t` bound to the C++ type of a floating dtype (the PyTorch idiom).
#define MG_DISPATCH_FLOAT(DTYPE, OPNAME, ...)                                                               \
  [&] {                                                                                                     \
    switch (DTYPE) {                                                                                        \
      case ::mg::DType::Float32: {                                                                          \
        using scalar_t = float;                                                                             \
        return __VA_ARGS__();                                                                               \
      }                                                                                                     \
      case ::mg::DType::Float64: {                                                                          \
        using scalar_t = double;                                                                            \
        return __VA_ARGS__();                                                                               \
      }                                                                                                     \
      default:                                                                                              \
        throw ::mg::Error(std::string(OPNAME) + ": expected a floating tensor (float32 or float64), got " + \
                          ::mg::dtype_name(DTYPE));                                                         \
    }                                                                                                       \
  }()

#define MG_DISPATCH_ALL(DTYPE, OPNAME, ...)                     \
  [&] {                                                         \
    switch (DTYPE) {                                            \
      case ::mg::DType::Float32: {                              \
        using scalar_t = float;                                 \
        return __VA_ARGS__();                                   \
      }                                                         \
      case ::mg::DType::Float64: {                              \
        using scalar_t = double;                                \
        return __VA_ARGS__();                                   \
      }                                                         \
      case ::mg::DType::Int64: {                                \
        using scalar_t = int64_t;                               \
        return __VA_ARGS__();                                   \
      }                                                         \
    }                                                           \
    throw ::mg::Error(std::string(OPNAME) + ": unknown dtype"); \
  }()
