#include "maxgrad/core/runtime/parallel.h"

#include <cblas.h>
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>

#include <memory>

#include "maxgrad/core/runtime/tbb_for.h"

namespace mg {

namespace {
std::unique_ptr<tbb::global_control> g_control;
int g_threads = 0;

// OpenBLAS must not start threads of its own: each GEMM runs inside one TBB task.
struct BlasSingleThreaded {
  BlasSingleThreaded() { openblas_set_num_threads(1); }
} g_blas_init;
}  // namespace

void set_num_threads(int n) {
  if (n <= 0) n = tbb::info::default_concurrency();
  g_control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, n);
  g_threads = n;
  openblas_set_num_threads(1);
}

int get_num_threads() {
  return g_threads > 0
             ? g_threads
             : static_cast<int>(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1 || get_num_threads() == 1) {
    for (int64_t c = 0; c < chunks; ++c) fn(c * grain, std::min(n, (c + 1) * grain));
    return;
  }
  // simple_partitioner with grain 1 over chunk indices: one task per fixed chunk.
  mg::tbb_parallel_for(
      tbb::blocked_range<int64_t>(0, chunks, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t c = r.begin(); c < r.end(); ++c) fn(c * grain, std::min(n, (c + 1) * grain));
      },
      tbb::simple_partitioner());
}

}  // namespace mg
