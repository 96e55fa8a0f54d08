// Options objects in libtorch's style: Conv2dOptions(3, 64, 3).stride(2).padding(1). Every
// hyper-parameter past the few that every call gives has a name, so a call cannot swap two of them
// without a word (torch's positional orders differ between layers and optimisers).
#pragma once

// MG_ARG(T, NAME, DEFAULT) inside an options struct: NAME(value) sets it and returns the options
// (so setters chain), NAME() reads it; as libtorch's TORCH_ARG. It leaves the struct's access
// private, so a struct lists its constructors before its MG_ARGs, and members that call the setters
// after them, under a `public:` of their own (a setter's return type is known from there on).
#define MG_ARG(T, NAME, DEFAULT)            \
 public:                                    \
  auto& NAME(const T& value) {              \
    NAME##_ = value;                        \
    return *this;                           \
  }                                         \
  const T& NAME() const { return NAME##_; } \
                                            \
 private:                                   \
  T NAME##_ = DEFAULT
