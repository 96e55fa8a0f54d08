// The MPI backend of ProcessGroup (nn/dist/distributed.h): MPI_COMM_WORLD, collectives on the calling
// thread. Compiled only when CMake's MAXGRAD_MPI is on (it defines MAXGRAD_HAVE_MPI); without it
// this file is empty and init_process_group() never leaves the single-process group.
#ifdef MAXGRAD_HAVE_MPI
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "maxgrad/core/error.h"
#include "maxgrad/nn/dist/distributed.h"

namespace mg::dist {

namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(cat("MPI: ", what, " failed: ", std::string(text, static_cast<size_t>(len))));
}

// MPI counts are int: a longer buffer goes in pieces of at most 2^30 elements.
constexpr int64_t kMaxCount = int64_t{1} << 30;

class MpiProcessGroup : public ProcessGroup {
 public:
  MpiProcessGroup() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      // FUNNELED: only the thread that initialised MPI calls it (the training loop's thread; the
      // oneTBB workers and the data loader's thread never do).
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
      });
    }
    // Errors come back as codes (turned into mg::Error above) instead of MPI's default abort.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 protected:
  void allreduce_f32(float* buf, int64_t n) override { allreduce(buf, n, MPI_FLOAT); }
  void allreduce_f64(double* buf, int64_t n) override { allreduce(buf, n, MPI_DOUBLE); }
  void broadcast_bytes(void* buf, int64_t bytes, int root) override {
    auto* p = static_cast<char*>(buf);
    for (int64_t done = 0; done < bytes; done += kMaxCount)
      check(MPI_Bcast(p + done, static_cast<int>(std::min(kMaxCount, bytes - done)), MPI_BYTE, root, MPI_COMM_WORLD),
            "MPI_Bcast");
  }
  void barrier_impl() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

 private:
  template <typename T> void allreduce(T* buf, int64_t n, MPI_Datatype type) {
    for (int64_t done = 0; done < n; done += kMaxCount)
      check(MPI_Allreduce(MPI_IN_PLACE, buf + done, static_cast<int>(std::min(kMaxCount, n - done)), type, MPI_SUM,
                          MPI_COMM_WORLD),
            "MPI_Allreduce");
  }
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::shared_ptr<ProcessGroup> make_mpi_group() { return std::make_shared<MpiProcessGroup>(); }

}  // namespace mg::dist
#endif  // MAXGRAD_HAVE_MPI
