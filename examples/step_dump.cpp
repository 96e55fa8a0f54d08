// step_dump: one (or a few) training steps of MaxViT, every number written out for comparison with
// PyTorch (shared/spec/cli.md; shared/tools/check_step.py compares against torchvision's MaxVit).
//
//   step_dump [model flags] --weights W.safetensors --batch B.safetensors --out O.safetensors
//             [--mode train|eval] [--lr 0.1] [--steps 1]
#include <iostream>

#include "core/blas_select.h"
#include "examples/common/model_flags.h"
#include "nn/serialize.h"

using namespace mg;

int main(int argc, char** argv) {
  select_blas_kernels(argc, argv);
  cli::ModelFlags mf;
  std::optional<std::string> weights, batch, out, mode;
  std::optional<double> lr;
  std::optional<int64_t> steps;
  cli::Flags flags("step_dump", "[model flags] --weights W --batch B --out O [--mode train|eval] [--lr X] [--steps N]");
  mf.add_to(flags);
  flags.add_string("weights", "full state_dict (safetensors), loaded strictly", &weights);
  flags.add_string("batch", "x (N,3,H,W) and y (N) int64 (safetensors)", &batch);
  flags.add_string("out", "where to write logits, loss, grad.* and state.*", &out);
  flags.add_string("mode", "train (SGD steps) or eval (one forward) [train]", &mode, {"train", "eval"});
  flags.add_double("lr", "plain SGD learning rate [0.1]", &lr, 0.0, 1e6);
  flags.add_int("steps", "training steps on the same batch [1]", &steps, 1, 1000000);
  flags.parse_or_exit(argc, argv);
  models::MaxVitConfig cfg;
  try {
    if (!weights || !batch || !out) throw cli::UsageError("--weights, --batch and --out are required");
    cfg = mf.config(0.0);
    cfg.stochastic_depth = 0.0;  // the spec: stochastic depth and dropout are off
  } catch (const cli::UsageError& e) {
    std::cerr << "step_dump: " << e.what() << "\n\n" << flags.usage();
    return 2;
  }
  mf.apply_threads();

  try {
    const DType dt = mf.tensor_dtype();
    models::MaxVit model(cfg, 0);
    model.to(dt);
    nn::load_state_dict(model, *weights);

    nn::NamedTensors b = nn::load_tensors(*batch);
    Tensor x, y;
    for (auto& [n, t] : b) {
      if (n == "x") x = t;
      if (n == "y") y = t;
    }
    MG_CHECK(x.defined() && y.defined(), "step_dump", "batch file ", *batch, " must hold tensors 'x' and 'y'");
    x = x.to(dt);
    y = y.to(DType::Int64);

    nn::NamedTensors result;
    if (mode.value_or("train") == "eval") {
      model.eval();
      NoGradGuard no_grad;
      Tensor logits = model(x);
      result = {{"logits", logits}, {"loss", cross_entropy(logits, y)}};
    } else {
      model.train();
      const double rate = lr.value_or(0.1);
      for (int64_t step = 0; step < steps.value_or(1); ++step) {
        model.zero_grad();
        Tensor logits = model(x);
        Tensor loss = cross_entropy(logits, y);
        loss.backward();
        if (step == 0) {
          result = {{"logits", logits.detach()}, {"loss", loss.detach()}};
          for (auto& [n, p] : model.named_parameters()) result.emplace_back("grad." + n, p.grad().clone());
        }
        NoGradGuard no_grad;
        for (Tensor& p : model.parameters()) p.add_(p.grad(), -rate);
      }
    }
    for (auto& [n, t] : model.state_dict()) result.emplace_back("state." + n, t.clone());
    nn::save_tensors(*out, result);
  } catch (const std::exception& e) {
    std::cerr << "step_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
