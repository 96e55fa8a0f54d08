// Where a step's time goes, op by op: a coarse profiler in the spirit of torch.autograd.profiler.
//
//   mg::profiler::enable(true);
//   ... forward, backward, optimiser step ...
//   std::cerr << mg::profiler::report(steps);   // ms and calls per step, largest first
//
// Off by default. enable() installs the profiler as the engine's observer (mg::EngineObserver in
// core/autograd.h); when off, each call of it returns at one relaxed atomic load. What is timed:
// - forward "name": every op calls record() (core/autograd.cpp) once its output is computed. The
//   ops that join the graph there are timed, and with grad mode off (evaluation) every op: an op's
//   forward time is the time since the previous timed op on the same thread (or since enable(), the
//   last Scope or the last backward node ended). Work in between, such as the model's own C++ or an
//   op's calls to other ops on detached tensors, goes to the next timed op. Ops called under a
//   NoGradGuard inside an op, before its own record(), are marked with PartOfOp (batch_norm's
//   running-statistics update), and with grad mode off an op's inner ops take their share of it.
// - backward "name": each node of run_backward, its formula together with adding its gradients into
//   the next nodes' and the leaves' (ops called inside a formula are not counted as forward ops).
// - any other span a program marks with Scope ("optimizer", "data"), as its own line.
// Times are wall clock on the calling thread; the kernels' parallel work is inside them. Entries are
// kept per (phase, name) and merged under a mutex, so several threads may record.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mg {
class Tensor;
}

namespace mg::profiler {

// record_shapes (as torch.profiler's): one entry per op and shapes of its inputs, e.g.
// "conv2d [128,128,16,16] [128,1,3,3]" (a depthwise convolution) apart from the 1x1 ones.
void enable(bool on, bool record_shapes = false);
bool enabled();
// Forgets every entry (e.g. after warm-up steps).
void reset();

enum class Phase { Forward, Backward, Scope };

struct Entry {
  Phase phase;
  std::string name;
  int64_t calls = 0;
  double ms = 0;  // total wall time
};
// All entries, the largest total first.
std::vector<Entry> entries();
// A table of entries() divided by `steps`: phase, name, ms per step, calls per step, share of the total.
std::string report(int64_t steps = 1);

// A named span timed as its own entry (Phase::Scope) while profiling is on; the ops called inside
// it are part of it.
class Scope {
 public:
  explicit Scope(const char* name);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* name_;
  int64_t start_ns_ = -1;  // -1: profiling was off when the scope began
};

// Ops called while one is alive on this thread are not timed as ops of their own: their time goes
// to the op that records next (e.g. batch_norm's running-statistics update, made of narrow + fill_).
class PartOfOp {
 public:
  PartOfOp();
  ~PartOfOp();
  PartOfOp(const PartOfOp&) = delete;
  PartOfOp& operator=(const PartOfOp&) = delete;
};

}  // namespace mg::profiler
