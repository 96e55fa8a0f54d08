// Which implementation of the kernels runs: `fast` (SIMD loops, BLAS, threads; core/kernels/) or
// `reference` (plain loops a student can step through; core/reference/). Both compute the same
// mathematics; the op files (core/ops/) call one named kernel per direction, and that kernel
// looks here to decide which of the two runs. One choice for the whole process.
//
// The environment variable MAXGRAD_KERNELS=fast|reference sets it at start-up (default: fast);
// set_kernel_path() changes it from C++, e.g. in a test that runs both paths in one process.
#pragma once
#include <string>

namespace mg {

enum class KernelPath { fast, reference };

// The active path. The first call reads MAXGRAD_KERNELS; an unknown value throws mg::Error naming
// the variable, the value and the two that fit (never a silent fall-back to fast).
KernelPath kernel_path();
void set_kernel_path(KernelPath path);
inline bool use_reference_kernels() { return kernel_path() == KernelPath::reference; }

const char* kernel_path_name(KernelPath path);  // "fast" or "reference"
KernelPath parse_kernel_path(const std::string& name, const char* where);

// While alive, the whole process runs on `path`; the previous choice comes back at scope exit.
class KernelPathGuard {
 public:
  explicit KernelPathGuard(KernelPath path) : prev_(kernel_path()) { set_kernel_path(path); }
  ~KernelPathGuard() { set_kernel_path(prev_); }
  KernelPathGuard(const KernelPathGuard&) = delete;
  KernelPathGuard& operator=(const KernelPathGuard&) = delete;

 private:
  KernelPath prev_;
};

}  // namespace mg
