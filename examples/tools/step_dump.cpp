// step_dump: one (or a few) training steps of MaxViT, every number written out for comparison with
// PyTorch (shared/spec/cli.md; shared/tools/check_step.py compares against torchvision's MaxVit).
//
//   step_dump [model flags] --weights W.safetensors --batch B.safetensors --out O.safetensors
//             [--mode train|eval] [--lr 0.1] [--steps 1]
//
// The computation itself is cli::run_step (examples/common/run_step.h), which tests/test_golden.cpp also runs.
#include <iostream>

#include "examples/common/step_flags.h"
#include "maxgrad/core/runtime/blas_select.h"
#include "maxgrad/nn/serialize/serialize.h"

using namespace mg;

int main(int argc, char** argv) {
  select_blas_kernels(argc, argv);
  cli::StepFlags sf;
  cli::Flags flags("step_dump", cli::StepFlags::kSynopsis);
  sf.add_to(flags);
  flags.parse_or_exit(argc, argv);
  models::MaxVitConfig cfg;
  try {
    if (!sf.weights || !sf.batch || !sf.out) throw cli::UsageError("--weights, --batch and --out are required");
    cfg = sf.config();
  } catch (const cli::UsageError& e) {
    std::cerr << "step_dump: " << e.what() << "\n\n" << flags.usage();
    return 2;
  }
  sf.model.apply_threads();

  try {
    const DType dt = sf.model.tensor_dtype();
    models::MaxVit model(cfg, 0);
    model.to(dt);
    serialize::load_state_dict(model, *sf.weights);  // strict; the error names every offending key and the file

    Tensor x, y;
    for (auto& [n, t] : serialize::load_tensors(*sf.batch)) {
      if (n == "x") x = t;
      if (n == "y") y = t;
    }
    MG_CHECK(x.defined() && y.defined(), "step_dump", "batch file ", *sf.batch, " must hold tensors 'x' and 'y'");
    serialize::save_tensors(*sf.out, cli::run_step(model, dt, x, y, sf.options()));
  } catch (const safetensors::ChecksumError& e) {  // a damaged input file (shared/spec/cli.md)
    std::cerr << "step_dump: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "step_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
