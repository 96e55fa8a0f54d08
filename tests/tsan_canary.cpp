// ThreadSanitizer canary (tsan preset only): proves the TSan build still reports a real race inside
// a parallel loop body, so tests/tsan.supp and core/runtime/tbb_for.h cannot silence more than oneTBB's own
// bookkeeping without a test noticing.
//   tsan_canary        disjoint writes from every chunk: must run clean
//   tsan_canary race   every chunk also adds to one shared counter: TSan must report a data race
#include <cstdio>
#include <string>
#include <vector>

#include "maxgrad/core/runtime/parallel.h"

int main(int argc, char** argv) {
  const bool race = argc > 1 && std::string(argv[1]) == "race";
  mg::set_num_threads(2);
  std::vector<float> in(1 << 16, 1.0f), out(in.size());
  long shared = 0;
  for (int rep = 0; rep < 20; ++rep)
    mg::parallel_for(static_cast<int64_t>(in.size()), 1024, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[i] = 2 * in[i];
      if (race) shared += end - begin;  // unsynchronised read-modify-write from every chunk
    });
  double sum = 0;
  for (float v : out) sum += v;
  std::printf("sum %.0f, counter %ld\n", sum, shared);
  return sum == 2.0 * in.size() ? 0 : 1;
}
