// sgemm_rate: the machine's single-precision GEMM rate, the yardstick of docs/performance.md.
//   sgemm_rate [--n 2048] [--threads 2] [--reps 5]
// Times C = A B for n x n float matrices with the OpenBLAS kernels the other programs use (the same
// OPENBLAS_CORETYPE selection), two ways: OpenBLAS's own threads (its best case, one big call), and
// maxgrad's gemm_parallel (TBB tasks over blocks of C, how the framework calls BLAS). The last line
// of stdout is one JSON object; each rate is the best of --reps runs, in GFLOP/s (2 n^3 per product).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "maxgrad/core/runtime/blas_select.h"
#include "maxgrad/core/generator.h"
#include "maxgrad/core/kernels/gemm.h"
#include "maxgrad/core/runtime/parallel.h"
#include "examples/common/flags.h"

using namespace mg;

int main(int argc, char** argv) {
  select_blas_kernels(argc, argv);
  std::optional<int64_t> n_flag, threads, reps;
  cli::Flags flags("sgemm_rate", "[--n 2048] [--threads 2] [--reps 5]");
  flags.add_int("n", "matrix size [2048]", &n_flag, 16, 16384);
  flags.add_int("threads", "threads [2]", &threads, 1, 1024);
  flags.add_int("reps", "timed products per method; the best counts [5]", &reps, 1, 1000);
  flags.parse_or_exit(argc, argv);
  const int64_t n = n_flag.value_or(2048);
  const int t = static_cast<int>(threads.value_or(2));
  Generator gen(1);
  std::vector<float> a(static_cast<size_t>(n * n)), b(a.size()), c(a.size());
  for (auto* v : {&a, &b})
    for (float& e : *v) e = static_cast<float>(gen.normal());
  const double flop = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);

  auto best_rate = [&](auto&& product) {
    product();  // warm-up: page in C, start the threads
    double best = 0;
    for (int64_t r = 0; r < reps.value_or(5); ++r) {
      auto t0 = std::chrono::steady_clock::now();
      product();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, flop / s / 1e9);
    }
    return best;
  };
  set_num_threads(t);  // also pins OpenBLAS to 1 thread per call
  const double tbb_rate = best_rate(
      [&] { kernels::gemm_parallel<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n); });
  openblas_set_num_threads(t);
  const double blas_rate = best_rate([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(n),
                static_cast<int>(n), 1.0f, a.data(), static_cast<int>(n), b.data(), static_cast<int>(n), 0.0f, c.data(),
                static_cast<int>(n));
  });
  openblas_set_num_threads(1);
  std::printf(
      "{\"n\":%lld,\"threads\":%d,\"blas_core\":\"%s\",\"openblas_threads_gflops\":%.1f,"
      "\"gemm_parallel_gflops\":%.1f,\"gflops\":%.1f}\n",
      static_cast<long long>(n), t, blas_core_name(), blas_rate, tbb_rate, std::max(blas_rate, tbb_rate));
  return 0;
}
