// The caching allocator behind Storage (core/runtime/allocator.h): freed large blocks are reused for
// requests of their size class, small ones bypass the cache, memory is aligned and separate, the
// cache can be emptied and switched off, and threads can allocate and free concurrently.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "maxgrad/core/runtime/allocator.h"
#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"

using namespace mg;

namespace {
// Every test starts from an empty cache with caching on, whatever the environment asked for.
struct FreshCache {
  FreshCache() { set_caching_enabled(true), release_cached_memory(); }
  ~FreshCache() { release_cached_memory(); }
};
}  // namespace

TEST_CASE("a freed large block is reused by the next request of its size class") {
  FreshCache fresh;
  const size_t n = 1 << 20;
  void* a = storage_allocate(n);
  REQUIRE(a != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  std::memset(a, 1, n);  // all n bytes are usable
  storage_free(a, n);
  CHECK(allocator_stats().cached_blocks == 1);
  const uint64_t hits = allocator_stats().hits;
  void* b = storage_allocate(n - 100);  // same class (rounded up by at most an eighth)
  CHECK(b == a);
  CHECK(allocator_stats().hits == hits + 1);
  CHECK(allocator_stats().cached_blocks == 0);
  void* c = storage_allocate(n);  // the cache is empty again: a new block
  CHECK(c != b);
  storage_free(b, n - 100);
  storage_free(c, n);
  CHECK(allocator_stats().cached_blocks == 2);
  CHECK(allocator_stats().cached_bytes >= 2 * n);
  release_cached_memory();
  CHECK(allocator_stats().cached_blocks == 0);
  CHECK(allocator_stats().cached_bytes == 0);
}

TEST_CASE("blocks of different size classes are not mixed up, small blocks are not cached") {
  FreshCache fresh;
  void* big = storage_allocate(1 << 20);
  storage_free(big, 1 << 20);
  void* other = storage_allocate(2 << 20);  // a different class: not the cached block
  CHECK(other != big);
  std::memset(other, 0, 2 << 20);
  storage_free(other, 2 << 20);
  void* small = storage_allocate(100);
  CHECK(reinterpret_cast<uintptr_t>(small) % 64 == 0);
  storage_free(small, 100);
  CHECK(allocator_stats().cached_blocks == 2);  // the two large ones only
  CHECK(storage_allocate(0) == nullptr);
  storage_free(nullptr, 0);
}

TEST_CASE("blocks of 2 MB or more start on a 2 MB boundary (room for transparent huge pages)") {
  FreshCache fresh;
  for (size_t n : {size_t(2) << 20, (size_t(5) << 20) + 4096}) {
    void* p = storage_allocate(n);
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(p) % (size_t(2) << 20) == 0);
    std::memset(p, 1, n);  // all of it is usable
    storage_free(p, n);
  }
}

TEST_CASE("tensors in a loop reuse their memory: steady state needs no new blocks") {
  FreshCache fresh;
  auto step = [] {
    Tensor a = ones({256, 1024}), b = full({256, 1024}, 2.0);
    Tensor c = add(a, b);
    CHECK(c.at({255, 1023}) == 3.0);
  };
  step();
  const uint64_t misses = allocator_stats().misses;
  for (int i = 0; i < 5; ++i) step();
  CHECK(allocator_stats().misses == misses);
}

TEST_CASE("with caching off, freed blocks go back to the system") {
  FreshCache fresh;
  set_caching_enabled(false);
  CHECK_FALSE(caching_enabled());
  void* a = storage_allocate(1 << 20);
  storage_free(a, 1 << 20);
  CHECK(allocator_stats().cached_blocks == 0);
  set_caching_enabled(true);
}

TEST_CASE("threads allocate and free concurrently without handing out a block twice") {
  FreshCache fresh;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) {
        const size_t n = (64 << 10) * (1 + (i + t) % 3);
        auto* p = static_cast<unsigned char*>(storage_allocate(n));
        p[0] = static_cast<unsigned char>(t), p[n - 1] = static_cast<unsigned char>(t);
        CHECK(p[0] == t);  // no other thread writes into a block this thread holds
        CHECK(p[n - 1] == t);
        storage_free(p, n);
      }
    });
  for (auto& th : threads) th.join();
  CHECK(allocator_stats().cached_blocks >= 1);
}
