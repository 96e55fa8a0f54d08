// Fault injection for the crash-safety tests: named points inside multi-step writes (a checkpoint's
// temporary file, flush, rename) where a test can make the process die as `kill -9`, a power cut or
// the OOM killer would: at once, with no destructor run and nothing more flushed.
//
//   MAXGRAD_CRASH_AT=<name>:<n>   the n-th time this process passes crash_point("<name>"), it sends
//                                 itself SIGKILL (n defaults to 1)
//
// Without the variable (every normal run) a crash point does nothing but read one cached flag.
// tests/test_train.cpp ("SIGKILL during checkpoint writing") kills train_cifar at each point and
// resumes from what is left on disk; docs/reliability.md lists the points.
#pragma once

namespace mg {

void crash_point(const char* name);

}  // namespace mg
