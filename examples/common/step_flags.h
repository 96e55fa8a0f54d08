// step_dump's flags (shared/spec/cli.md): the model flags plus the step's own. Shared with
// tests/test_golden.cpp, which parses a golden case's args.txt exactly as step_dump does.
#pragma once
#include "examples/common/model_flags.h"
#include "examples/common/run_step.h"

namespace mg::cli {

struct StepFlags {
  ModelFlags model;
  std::optional<std::string> weights, batch, out, mode;
  std::optional<double> lr;
  std::optional<int64_t> steps;

  static constexpr const char* kSynopsis =
      "[model flags] --weights W --batch B --out O [--mode train|eval] [--lr X] [--steps N]";
  void add_to(Flags& f);
  // The model's configuration with stochastic depth 0 (the spec); throws UsageError when it does not fit.
  models::MaxVitConfig config() const;
  cli::StepOptions options() const;
};

}  // namespace mg::cli
