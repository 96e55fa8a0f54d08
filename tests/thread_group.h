// K ranks as K threads of one process, for testing what runs over a ProcessGroup (SyncBatchNorm,
// DistributedDataParallel, sharded loading) without MPI:
//
//   run_ranks(3, [&](std::shared_ptr<mg::dist::ProcessGroup> g) { ... g->rank() ... });  // 3 threads
//
// Every collective is a meeting: each rank leaves its buffer, the last to arrive combines them all
// (sums in rank order, as MPI's sum of two does) while the others wait, and then all go on.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "maxgrad/nn/dist/distributed.h"

namespace mg::testing {

class ThreadGroup : public dist::ProcessGroup {
 public:
  struct Meeting {
    explicit Meeting(int ranks) : size(ranks), slots(static_cast<size_t>(ranks)), counts(static_cast<size_t>(ranks)) {}
    const int size;
    std::mutex mutex;
    std::condition_variable done;
    int arrived = 0;
    uint64_t generation = 0;
    std::vector<void*> slots;
    std::vector<int64_t> counts;
    std::string error;  // a mismatch found by the combining rank, rethrown on every rank

    void meet(int rank, void* buf, int64_t n, const std::function<void(std::vector<void*>&, int64_t)>& combine) {
      std::unique_lock<std::mutex> lock(mutex);
      slots[static_cast<size_t>(rank)] = buf;
      counts[static_cast<size_t>(rank)] = n;
      const uint64_t gen = generation;
      if (++arrived == size) {
        error.clear();
        for (int64_t c : counts)
          if (c != n) error = "ThreadGroup: the ranks called a collective with different sizes";
        if (error.empty()) combine(slots, n);
        arrived = 0;
        ++generation;
        done.notify_all();
      } else if (!done.wait_for(lock, std::chrono::seconds(120), [&] { return generation != gen; })) {
        throw std::runtime_error("ThreadGroup: a rank never reached the collective (it failed, or called another)");
      }
      if (!error.empty()) throw std::runtime_error(error);
    }
  };

  ThreadGroup(std::shared_ptr<Meeting> meeting, int rank) : meeting_(std::move(meeting)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return meeting_->size; }
  std::string backend() const override { return "threads"; }
  [[noreturn]] void abort(int) override { throw std::runtime_error("ThreadGroup::abort"); }

 protected:
  void allreduce_f32(float* buf, int64_t n) override { allreduce(buf, n); }
  void allreduce_f64(double* buf, int64_t n) override { allreduce(buf, n); }
  void broadcast_bytes(void* buf, int64_t bytes, int root) override {
    meeting_->meet(rank_, buf, bytes, [root](std::vector<void*>& s, int64_t n) {
      for (size_t r = 0; r < s.size(); ++r)
        if (static_cast<int>(r) != root) std::memcpy(s[r], s[static_cast<size_t>(root)], static_cast<size_t>(n));
    });
  }
  void barrier_impl() override {
    meeting_->meet(rank_, nullptr, 0, [](std::vector<void*>&, int64_t) {});
  }

 private:
  template <typename T> void allreduce(T* buf, int64_t n) {
    meeting_->meet(rank_, buf, n, [](std::vector<void*>& s, int64_t count) {
      std::vector<T> sum(static_cast<size_t>(count), T(0));
      for (void* p : s)
        for (int64_t i = 0; i < count; ++i) sum[static_cast<size_t>(i)] += static_cast<T*>(p)[i];
      for (void* p : s) std::memcpy(p, sum.data(), static_cast<size_t>(count) * sizeof(T));
    });
  }
  std::shared_ptr<Meeting> meeting_;
  int rank_;
};

// Runs fn on `ranks` threads, each with its own ThreadGroup of the same meeting, and rethrows the
// first exception any of them threw. (A shared_ptr, as SyncBatchNorm and DistributedDataParallel
// keep the group.)
inline void run_ranks(int ranks, const std::function<void(std::shared_ptr<dist::ProcessGroup>)>& fn) {
  auto meeting = std::make_shared<ThreadGroup::Meeting>(ranks);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      try {
        fn(std::make_shared<ThreadGroup>(meeting, r));
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace mg::testing
