#include "maxgrad/core/runtime/allocator.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define MG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MG_ASAN 1
#endif
#endif
#ifdef MG_ASAN
#include <sanitizer/asan_interface.h>
#define MG_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define MG_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define MG_POISON(p, n) ((void)(p), (void)(n))
#define MG_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace mg {

namespace {

constexpr size_t kMinCached = 16 * 1024;  // below this malloc is fast and fault-free already

// The class a request of n bytes (n >= kMinCached) is served from: n rounded up to a multiple of an
// eighth of the power of two below it (every class is a multiple of 64, as aligned_alloc needs).
size_t class_size(size_t n) {
  const int lg = 63 - __builtin_clzll(static_cast<unsigned long long>(n - 1));
  const size_t step = size_t(1) << (lg - 3);
  return (n + step - 1) / step * step;
}

constexpr size_t kHugePage = size_t(2) << 20;

void* system_allocate(size_t n) {
#ifdef __linux__
  if (n >= kHugePage) {  // 2 MB pages (see allocator.h): aligned and a whole number of them
    const size_t rounded = (n + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (!p) throw std::bad_alloc();
    madvise(p, rounded, MADV_HUGEPAGE);  // advice: if refused, the block simply keeps 4 KB pages
    return p;
  }
#endif
  void* p = std::aligned_alloc(64, n);
  if (!p) throw std::bad_alloc();
  return p;
}

struct Cache {
  std::mutex m;
  std::unordered_map<size_t, std::vector<void*>> free_lists;  // class size -> free blocks
  AllocatorStats stats;
  bool enabled = std::getenv("MAXGRAD_NO_CACHING") == nullptr;

  void release_all() {  // with m held
    for (auto& [size, blocks] : free_lists)
      for (void* p : blocks) {
        MG_UNPOISON(p, size);
        std::free(p);
      }
    free_lists.clear();
    stats.cached_bytes = 0;
    stats.cached_blocks = 0;
  }
};

// Never destroyed: Storage objects in other static objects may be freed after main returns, in any
// order, and must still find the cache. (What it holds then is reachable, so no leak is reported.)
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

void* storage_allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  if (nbytes < kMinCached) return system_allocate((nbytes + 63) / 64 * 64);
  const size_t size = class_size(nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.m);
    if (c.enabled) {
      auto it = c.free_lists.find(size);
      if (it != c.free_lists.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        c.stats.cached_bytes -= size;
        --c.stats.cached_blocks;
        ++c.stats.hits;
        MG_UNPOISON(p, size);
        return p;
      }
      ++c.stats.misses;
    }
  }
  return system_allocate(size);
}

void storage_free(void* p, size_t nbytes) {
  if (!p) return;
  if (nbytes < kMinCached) return std::free(p);
  const size_t size = class_size(nbytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.m);
  if (!c.enabled) return std::free(p);
  MG_POISON(p, size);
  c.free_lists[size].push_back(p);
  c.stats.cached_bytes += size;
  ++c.stats.cached_blocks;
  if (c.stats.cached_bytes > c.stats.peak_cached_bytes) c.stats.peak_cached_bytes = c.stats.cached_bytes;
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.m);
  return c.stats;
}

void release_cached_memory() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.m);
  c.release_all();
}

void set_caching_enabled(bool on) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.m);
  c.enabled = on;
  if (!on) c.release_all();
}

bool caching_enabled() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.m);
  return c.enabled;
}

}  // namespace mg
