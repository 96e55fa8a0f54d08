#include "maxgrad/core/kernel_path.h"

#include <atomic>
#include <cstdlib>

#include "maxgrad/core/error.h"

namespace mg {

namespace {
// -1: not read yet. Read by every kernel call, from every thread: an atomic, not a lock.
std::atomic<int> g_path{-1};
}  // namespace

const char* kernel_path_name(KernelPath path) { return path == KernelPath::reference ? "reference" : "fast"; }

KernelPath parse_kernel_path(const std::string& name, const char* where) {
  if (name == "fast") return KernelPath::fast;
  if (name == "reference") return KernelPath::reference;
  throw Error(cat(where, ": unknown kernel path '", name, "' (use fast, the default, or reference)"));
}

KernelPath kernel_path() {
  int p = g_path.load(std::memory_order_relaxed);
  if (p < 0) {
    const char* env = std::getenv("MAXGRAD_KERNELS");
    const KernelPath from_env = env && *env ? parse_kernel_path(env, "MAXGRAD_KERNELS") : KernelPath::fast;
    int expected = -1;
    g_path.compare_exchange_strong(expected, static_cast<int>(from_env));
    p = g_path.load(std::memory_order_relaxed);
  }
  return static_cast<KernelPath>(p);
}

void set_kernel_path(KernelPath path) { g_path.store(static_cast<int>(path), std::memory_order_relaxed); }

}  // namespace mg
