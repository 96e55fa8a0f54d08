// The memory behind every Storage: a caching allocator, as PyTorch's CUDA one.
//
// A training step allocates and frees the same large buffers (activations, gradients, GEMM
// temporaries) every time. Through malloc, each large block is fresh memory from the kernel (mmap,
// or heap growth after a trim), and every first touch of each 4 KB page is a page fault that zeroes
// it: about a sixth of a MaxViT step's time went there. Here a freed block of 16 KB or more goes on
// a free list for its size class instead, and the next request of that class takes it back, so
// steady-state steps do not touch the system allocator at all. Smaller blocks go to malloc directly
// (its own caches serve them without faults).
//
// Blocks of 2 MB or more are placed on 2 MB boundaries and marked MADV_HUGEPAGE (Linux), so the
// kernel backs them with transparent huge pages where it allows them (Debian's default is
// "madvise": only on request). Kernels that walk a channel across the batch of an NCHW tensor
// (batch norm, depthwise convolutions) touch a new 4 KB page every row, and the TLB misses cost
// about a fifth of batch norm's time; with 2 MB pages they are gone. Untouched tail pages of a
// rounded-up block are never faulted in, so resident memory grows by less than a page per block.
//
// Size classes: eight per power of two (a request is rounded up by at most 12.5%). The cache only
// ever holds blocks that were in use at the same time before, so it stays under the previous peak
// of live memory per class. release_cached_memory() gives all of it back (like
// torch.cuda.empty_cache()); MAXGRAD_NO_CACHING=1 in the environment turns caching off. Thread-safe
// (one mutex: a step makes a few thousand large allocations, so contention is negligible). Under
// AddressSanitizer cached blocks are poisoned, so a use after free is still reported.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mg {

// 64-byte aligned, at least nbytes (nbytes 0 gives nullptr). Throws std::bad_alloc.
void* storage_allocate(size_t nbytes);
// Returns a block from storage_allocate with the same nbytes.
void storage_free(void* p, size_t nbytes);

struct AllocatorStats {
  size_t cached_bytes = 0;  // held in free lists now
  size_t cached_blocks = 0;
  uint64_t hits = 0;    // requests served from the cache
  uint64_t misses = 0;  // requests that went to the system (cacheable sizes only)
  size_t peak_cached_bytes = 0;
};
AllocatorStats allocator_stats();
// Frees every cached block back to the system. Blocks in use are unaffected.
void release_cached_memory();
// On by default (unless MAXGRAD_NO_CACHING is set); turning it off also releases the cache.
void set_caching_enabled(bool on);
bool caching_enabled();

}  // namespace mg
