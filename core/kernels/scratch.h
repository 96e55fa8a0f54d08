// A kernel's scratch buffer, left uninitialised. std::vector<T>(n) writes n zeros first: for the
// stem's im2col columns (a quarter of a megabyte per task) and the 1x1 convolutions' blocks of
// gathered samples, that was a memset over memory the kernel then overwrites whole. Only for buffers
// every value of which is written before it is read (valgrind's memcheck checks that:
// scripts/memcheck_step_dump.sh).
#pragma once
#include <cstdint>
#include <memory>

namespace mg::kernels {

template <typename T> class Scratch {
 public:
  explicit Scratch(int64_t n) : p_(n > 0 ? new T[static_cast<size_t>(n)] : nullptr) {}  // default-initialised
  T* data() { return p_.get(); }
  T& operator[](int64_t i) { return p_[static_cast<size_t>(i)]; }

 private:
  std::unique_ptr<T[]> p_;
};

}  // namespace mg::kernels
