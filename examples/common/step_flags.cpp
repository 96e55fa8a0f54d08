#include "examples/common/step_flags.h"

namespace mg::cli {

void StepFlags::add_to(Flags& f) {
  model.add_to(f);
  f.add_string("weights", "full state_dict (safetensors), loaded strictly", &weights);
  f.add_string("batch", "x (N,3,H,W) and y (N) int64 (safetensors)", &batch);
  f.add_string("out", "where to write logits, loss, grad.* and state.*", &out);
  f.add_string("mode", "train (SGD steps) or eval (one forward) [train]", &mode, {"train", "eval"});
  f.add_double("lr", "plain SGD learning rate [0.1]", &lr, 0.0, 1e6);
  f.add_int("steps", "training steps on the same batch [1]", &steps, 1, 1000000);
}

models::MaxVitConfig StepFlags::config() const {
  models::MaxVitConfig cfg = model.config(0.0);
  cfg.stochastic_depth = 0.0;  // the spec: stochastic depth and dropout are off
  return cfg;
}

cli::StepOptions StepFlags::options() const {
  cli::StepOptions o;
  o.train = mode.value_or("train") == "train";
  o.lr = lr.value_or(0.1);
  o.steps = steps.value_or(1);
  return o;
}

}  // namespace mg::cli
