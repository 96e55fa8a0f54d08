// Storage: one reference-counted, 64-byte-aligned block of bytes shared by every view of it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace mg {

struct Storage {
  explicit Storage(size_t nbytes) : nbytes_(nbytes) {
    // 64-byte alignment lets kernels use aligned vector loads on whole tensors; size rounded up
    // because aligned_alloc requires a multiple of the alignment.
    size_t n = (nbytes + 63) / 64 * 64;
    data_ = n ? std::aligned_alloc(64, n) : nullptr;
    if (n && !data_) throw std::bad_alloc();
  }
  ~Storage() { std::free(data_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }

  // Bumped by every in-place write; backward compares it with the value saved at forward time,
  // so writing into a tensor that a node saved is caught instead of giving a wrong gradient.
  uint64_t version = 0;

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
};

}  // namespace mg
