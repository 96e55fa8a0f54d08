// sgemm_rate: the machine's single-precision GEMM rate, the yardstick of docs/performance.md.
//   sgemm_rate [--n 2048] [--threads 2] [--reps 5]
// Times C = A B for n x n float matrices with the OpenBLAS kernels the other programs use (the same
// OPENBLAS_CORETYPE selection), two ways: OpenBLAS's own threads (its best case, one big call), and
// maxgrad's gemm_parallel (TBB tasks over blocks of C, how the framework calls BLAS); and beside
// them the cores' FMA peak, the ceiling no kernel can pass. The last line of stdout is one JSON
// object; each rate is the best of --reps runs, in GFLOP/s (2 n^3 per product, 2 per FMA lane).
#include <cblas.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "examples/common/flags.h"
#include "maxgrad/core/generator.h"
#include "maxgrad/core/kernels/gemm.h"
#include "maxgrad/core/runtime/blas_select.h"
#include "maxgrad/core/runtime/parallel.h"

using namespace mg;

namespace {

// kChains independent chains of FMAs on registers, nothing loaded or stored: enough chains to keep
// every FMA pipe busy through its latency (2 pipes x 4-5 cycles on current x86 cores). Returns the
// chains' sum, stored by the caller, so that the loop is not optimised away. Compiled for AVX-512 and AVX2 whatever the
// build's -march, so that the portable build measures the same ceiling.
constexpr int kChains = 12;
constexpr int64_t kFmaSteps = 50'000'000;  // per thread: 0.1-0.3 s on a 3-4 GHz core
#if defined(__x86_64__)
__attribute__((target("avx512f"))) float fma_chains_512(float seed) {
  __m512 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm512_set1_ps(seed + static_cast<float>(k) * 1e-7f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < kFmaSteps; ++i)
    for (int k = 0; k < kChains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], m, c);
  for (int k = 1; k < kChains; ++k) acc[0] = _mm512_add_ps(acc[0], acc[k]);
  float lanes[16];
  _mm512_storeu_ps(lanes, acc[0]);
  float sum = 0;
  for (float v : lanes) sum += v;
  return sum;
}
__attribute__((target("avx2,fma"))) float fma_chains_256(float seed) {
  __m256 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm256_set1_ps(seed + static_cast<float>(k) * 1e-7f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < kFmaSteps; ++i)
    for (int k = 0; k < kChains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], m, c);
  for (int k = 1; k < kChains; ++k) acc[0] = _mm256_add_ps(acc[0], acc[k]);
  float lanes[8];
  _mm256_storeu_ps(lanes, acc[0]);
  float sum = 0;
  for (float v : lanes) sum += v;
  return sum;
}
#endif

// The FMA peak of `threads` cores at once, in GFLOP/s, and the vector width it used (0: no FMA
// instructions on this CPU, peak not measured).
struct FmaPeak {
  double gflops = 0;
  int lanes = 0;
};
FmaPeak fma_peak(int threads, int64_t reps) {
  FmaPeak peak;
#if defined(__x86_64__)
  float (*chains)(float) = nullptr;
  if (__builtin_cpu_supports("avx512f"))
    chains = fma_chains_512, peak.lanes = 16;
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    chains = fma_chains_256, peak.lanes = 8;
  if (!chains) return peak;
  std::vector<float> sums(static_cast<size_t>(threads));
  for (int64_t r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sums[static_cast<size_t>(t)] = chains(1.0f + t); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double flop = 2.0 * peak.lanes * kChains * static_cast<double>(kFmaSteps) * threads;
    peak.gflops = std::max(peak.gflops, flop / s / 1e9);
  }
#else
  (void)threads, (void)reps;
#endif
  return peak;
}

}  // namespace

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
  const FmaPeak peak = fma_peak(t, reps.value_or(5));
  std::printf(
      "{\"n\":%lld,\"threads\":%d,\"blas_core\":\"%s\",\"openblas_threads_gflops\":%.1f,"
      "\"gemm_parallel_gflops\":%.1f,\"gflops\":%.1f,\"fma_peak_gflops\":%.1f,\"fma_peak_lanes\":%d}\n",
      static_cast<long long>(n), t, blas_core_name(), blas_rate, tbb_rate, std::max(blas_rate, tbb_rate), peak.gflops,
      peak.lanes);
  return 0;
}
