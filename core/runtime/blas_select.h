// Picking OpenBLAS's kernels on CPUs newer than the installed OpenBLAS.
//
// Debian 12's OpenBLAS 0.3.21 chooses its kernels at load time from the CPU it recognises; on a
// newer CPU (seen here: a Xeon with AVX-512 FP16) it falls back to "Prescott", an SSE3 kernel about
// 4x slower than its AVX-512 one. OpenBLAS reads OPENBLAS_CORETYPE only when it loads, so a program
// that wants the fast kernels re-executes itself once with the variable set. Nothing happens when
// the variable is already set (a machine that sets it on purpose keeps its choice), when OpenBLAS
// recognised the CPU, or when MAXGRAD_KEEP_BLAS_CORE=1.
#pragma once

namespace mg {

// Call first thing in main(). Returns normally when nothing needs changing (or exec failed).
void select_blas_kernels(int argc, char** argv);
// The kernel family OpenBLAS is using ("SkylakeX", "Haswell", "Prescott", ...).
const char* blas_core_name();

}  // namespace mg
