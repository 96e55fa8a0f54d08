// Threads: oneTBB runs the kernels' loops; OpenBLAS is kept single-threaded per call and is only
// ever called from inside those loops, so one setting (set_num_threads) governs all the cores and
// the two pools never oversubscribe each other.
#pragma once
#include <cstdint>
#include <functional>

namespace mg {

void set_num_threads(int n);  // n <= 0: all cores
int get_num_threads();

// Runs fn(begin, end) over [0, n) in chunks of `grain` (the last may be shorter). The chunks are
// fixed by n and grain alone, never by the thread count, so a kernel whose chunks write disjoint
// outputs gives bitwise-identical results with 1 or many threads.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace mg
