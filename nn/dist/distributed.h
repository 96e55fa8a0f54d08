// Processes that train one model together: torch.distributed reduced to what data-parallel training
// and SyncBatchNorm need. A ProcessGroup is `size()` processes ("ranks") running the same program;
// its collectives must be called by every rank, in the same order, with the same sizes.
//
//   auto group = dist::init_process_group();   // MPI's world under mpirun, else a group of one
//   group->allreduce_sum(buf, n);              // buf = the element-wise sum over all ranks
//   group->broadcast(bytes, n, /*root=*/0);    // every rank gets rank 0's bytes
//
// Backends: "mpi" (nn/dist/distributed_mpi.cpp, compiled when CMake's MAXGRAD_MPI is on: Open MPI or any
// MPI library, the engine CPU clusters already run; no networking of maxgrad's own) and "single"
// (one process, every collective a no-op), which every build has. docs/distributed.md shows how to run.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace mg::dist {

// Time and volume spent in collectives, for train_cifar's report.
struct CommStats {
  double seconds = 0;
  int64_t calls = 0, bytes = 0;
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;

  // In place: afterwards buf holds the element-wise sum over ranks, the same on every rank.
  void allreduce_sum(float* buf, int64_t n) {
    timed(n * 4, [&] { allreduce_f32(buf, n); });
  }
  void allreduce_sum(double* buf, int64_t n) {
    timed(n * 8, [&] { allreduce_f64(buf, n); });
  }
  // root's `bytes` bytes at buf are copied into buf on every other rank.
  void broadcast(void* buf, int64_t bytes, int root) {
    timed(bytes, [&] { broadcast_bytes(buf, bytes, root); });
  }
  void barrier() {
    timed(0, [&] { barrier_impl(); });
  }
  // Ends every rank of the job now (MPI_Abort). For an error on one rank: the others, waiting in a
  // collective, would otherwise wait for it forever.
  [[noreturn]] virtual void abort(int exit_code) = 0;

  const CommStats& stats() const { return stats_; }

 protected:
  virtual void allreduce_f32(float* buf, int64_t n) = 0;
  virtual void allreduce_f64(double* buf, int64_t n) = 0;
  virtual void broadcast_bytes(void* buf, int64_t bytes, int root) = 0;
  virtual void barrier_impl() = 0;

 private:
  template <typename F> void timed(int64_t bytes, F&& f);
  CommStats stats_;
};

template <typename F> void ProcessGroup::timed(int64_t bytes, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stats_.calls += 1;
  stats_.bytes += bytes;
}

// One process: rank 0 of 1, every collective leaves the data as it is.
class SingleProcessGroup : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  [[noreturn]] void abort(int exit_code) override;

 protected:
  void allreduce_f32(float*, int64_t) override {}
  void allreduce_f64(double*, int64_t) override {}
  void broadcast_bytes(void*, int64_t, int) override {}
  void barrier_impl() override {}
};

// How many processes the launcher started and which one this is, read from its environment
// (Open MPI's mpirun: OMPI_COMM_WORLD_SIZE/RANK/LOCAL_SIZE; MPICH, Intel MPI and Slurm's PMI:
// PMI_SIZE/PMI_RANK). {1, 0, 1} when the program was started without one. Usable before
// init_process_group, e.g. to keep the other ranks quiet while the command line is parsed.
struct LaunchInfo {
  int world_size = 1, rank = 0, local_size = 1;  // local_size: ranks on this machine
  bool launched() const { return world_size > 1; }
};
LaunchInfo launch_info();

// The group of this run, made once per process (later calls return the same group): MPI's world
// when a launcher started several ranks, else a SingleProcessGroup. A launch of several ranks in a
// build without MPI throws, naming the package to install: each rank alone would train the whole
// model and overwrite the others' checkpoints. MPI is finalised when the program exits normally.
std::shared_ptr<ProcessGroup> init_process_group();

// True when this build can run several ranks (CMake found MPI: MAXGRAD_HAVE_MPI).
bool mpi_available();

}  // namespace mg::dist
