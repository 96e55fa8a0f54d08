#include "maxgrad/core/runtime/blas_select.h"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace mg {

const char* blas_core_name() { return openblas_get_corename(); }

void select_blas_kernels(int /*argc*/, char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("MAXGRAD_KEEP_BLAS_CORE")) return;
  // valgrind re-executing itself through /proc/self/exe would not be valgrind any more.
  const char* preload = std::getenv("LD_PRELOAD");
  if (preload && std::strstr(preload, "vgpreload")) return;
  // Nor would a program started through the dynamic loader by hand (ld.so --glibc-hwcaps-mask ...,
  // tests/isa_level.sh): /proc/self/exe is then the loader, not the program.
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0 && std::string(exe, static_cast<size_t>(len)).find("/ld-linux") != std::string::npos) return;
  const std::string core = openblas_get_corename();
  if (core != "Prescott" && core != "Core2" && core != "Nehalem" && core != "Unknown") return;
  const char* better = nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    better = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    better = "Haswell";
  if (!better) return;
  setenv("OPENBLAS_CORETYPE", better, 1);
  setenv("MAXGRAD_KEEP_BLAS_CORE", "1", 1);  // never loop, even if the new choice is refused
  execv("/proc/self/exe", argv);
  // exec failed: carry on with the slow kernels, which are still correct.
}

}  // namespace mg
