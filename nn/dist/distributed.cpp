#include "maxgrad/nn/dist/distributed.h"

#include <cstdlib>
#include <mutex>

#include "maxgrad/core/error.h"

namespace mg::dist {

#ifdef MAXGRAD_HAVE_MPI
std::shared_ptr<ProcessGroup> make_mpi_group();  // nn/dist/distributed_mpi.cpp
#endif

void SingleProcessGroup::abort(int exit_code) { std::exit(exit_code); }

namespace {
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return *end == '\0' && x >= 0 && x < (1L << 30) ? static_cast<int>(x) : fallback;
}
}  // namespace

LaunchInfo launch_info() {
  LaunchInfo li;
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) {  // Open MPI's mpirun
    li.world_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    li.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    li.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", li.world_size);
  } else if (std::getenv("PMI_SIZE")) {  // MPICH's Hydra, Intel MPI, Slurm's srun --mpi=pmi2
    li.world_size = env_int("PMI_SIZE", 1);
    li.rank = env_int("PMI_RANK", 0);
    li.local_size = env_int("MPI_LOCALNRANKS", li.world_size);
  }
  if (li.world_size < 1) li.world_size = 1;
  if (li.local_size < 1) li.local_size = 1;
  return li;
}

bool mpi_available() {
#ifdef MAXGRAD_HAVE_MPI
  return true;
#else
  return false;
#endif
}

std::shared_ptr<ProcessGroup> init_process_group() {
  static std::mutex mutex;
  static std::shared_ptr<ProcessGroup> group;
  std::lock_guard<std::mutex> lock(mutex);
  if (group) return group;
  const LaunchInfo li = launch_info();
  if (!li.launched()) return group = std::make_shared<SingleProcessGroup>();
#ifdef MAXGRAD_HAVE_MPI
  return group = make_mpi_group();
#else
  throw Error(cat("maxgrad: started as rank ", li.rank, " of ", li.world_size,
                  " by an MPI launcher, but this build has no MPI, so every rank would train alone and overwrite "
                  "the others' files. Install Open MPI (sudo apt-get install libopenmpi-dev openmpi-bin) and "
                  "rebuild (CMake finds it; -DMAXGRAD_MPI=ON insists on it), or run one process without mpirun."));
#endif
}

}  // namespace mg::dist
