#include "examples/common/run_step.h"

namespace mg::cli {

nn::NamedTensors run_step(MaxVit& model, DType dtype, const Tensor& x_in, const Tensor& y_in, const StepOptions& opt) {
  MG_CHECK(opt.steps >= 1, "run_step", "steps must be at least 1, got ", opt.steps);
  const Tensor x = x_in.to(dtype), y = y_in.to(DType::Int64);
  nn::NamedTensors result;
  if (!opt.train) {
    model.eval();
    NoGradGuard no_grad;
    Tensor logits = model(x);
    result = {{"logits", logits}, {"loss", cross_entropy(logits, y)}};
  } else {
    model.train();
    for (int64_t step = 0; step < opt.steps; ++step) {
      model.zero_grad();
      Tensor logits = model(x);
      Tensor loss = cross_entropy(logits, y);
      loss.backward();
      if (step == 0) {
        result = {{"logits", logits.detach()}, {"loss", loss.detach()}};
        for (auto& [n, p] : model.named_parameters()) result.emplace_back("grad." + n, p.grad().clone());
      }
      NoGradGuard no_grad;
      for (Tensor& p : model.parameters()) p.add_(p.grad(), -opt.lr);
    }
  }
  for (auto& [n, t] : model.state_dict()) result.emplace_back("state." + n, t.clone());
  return result;
}

nn::NamedTensors run_step(MaxVitConfig cfg, DType dtype, const nn::NamedTensors& weights, const Tensor& x,
                          const Tensor& y, const StepOptions& opt) {
  cfg.stochastic_depth = 0.0;
  MaxVit model(cfg, 0);
  model.to(dtype);
  model.load_state_dict(weights);
  return run_step(model, dtype, x, y, opt);
}

}  // namespace mg::cli
