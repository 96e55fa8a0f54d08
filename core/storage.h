// Storage: one reference-counted, 64-byte-aligned block of bytes shared by every view of it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "maxgrad/core/runtime/allocator.h"

namespace mg {

struct Storage {
  // 64-byte alignment lets kernels use aligned vector loads on whole tensors. The memory comes from
  // the caching allocator (core/runtime/allocator.h): steady-state training steps reuse freed blocks.
  explicit Storage(size_t nbytes) : data_(storage_allocate(nbytes)), nbytes_(nbytes) {}
  ~Storage() { storage_free(data_, nbytes_); }
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
