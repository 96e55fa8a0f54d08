// The computation behind step_dump (shared/spec/cli.md): a few plain-SGD training steps, or one
// eval forward, with every number that a parity check compares written out by name. step_dump and
// tests/test_golden.cpp both call it, so the in-process golden test checks exactly what the CLI runs.
#pragma once
#include <cstdint>

#include "maxgrad/models/maxvit.h"

namespace mg::cli {

using models::MaxVit;
using models::MaxVitConfig;

struct StepOptions {
  bool train = true;  // false: one forward in eval mode, no update
  double lr = 0.1;    // p -= lr * grad (no momentum, no weight decay)
  int64_t steps = 1;  // training steps on the same batch
};

// model: already holding the weights (and converted to its dtype). x (N, 3, H, W) is converted to
// the model's dtype, y (N) to int64. Returns "logits" (N, K) and "loss" [] from the first forward,
// "grad.NAME" for every parameter from the first backward (train only), and "state.NAME" for every
// state_dict entry after the last step.
nn::NamedTensors run_step(MaxVit& model, DType dtype, const Tensor& x, const Tensor& y, const StepOptions& opt);

// The same from a configuration and a full state_dict (loaded strictly). Stochastic depth is forced
// to 0, as the spec says.
nn::NamedTensors run_step(MaxVitConfig cfg, DType dtype, const nn::NamedTensors& weights, const Tensor& x,
                          const Tensor& y, const StepOptions& opt);

}  // namespace mg::cli
