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

  // Reading the inputs: every failure is the files' (shared/spec/cli.md: exit 2); the step itself
  // can then only fail as a program does (exit 1).
  bool loading = true;
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
    MG_CHECK(x.dim() == 4 && x.size(0) > 0 && x.size(1) == 3 && x.size(2) == cfg.input_h && x.size(3) == cfg.input_w &&
                 (x.dtype() == DType::Float32 || x.dtype() == DType::Float64),
             "step_dump", "batch file ", *sf.batch, ": x is ", x.info(), "; these model flags take float (N, 3, ",
             cfg.input_h, ", ", cfg.input_w, ")");
    MG_CHECK(y.dim() == 1 && y.size(0) == x.size(0) && y.dtype() == DType::Int64, "step_dump", "batch file ", *sf.batch,
             ": y is ", y.info(), "; expected int64 (", x.size(0), ") class indices");
    const std::vector<double> labels = y.to_vector();
    for (size_t i = 0; i < labels.size(); ++i)
      MG_CHECK(labels[i] >= 0 && labels[i] < static_cast<double>(cfg.num_classes), "step_dump", "batch file ",
               *sf.batch, ": y[", i, "] = ", labels[i], " is not a class of ", cfg.num_classes);
    loading = false;
    serialize::save_tensors(*sf.out, cli::run_step(model, dt, x, y, sf.options()));
  } catch (const std::exception& e) {
    std::cerr << "step_dump: " << e.what() << "\n";  // the errors name the file
    return loading ? 2 : 1;
  }
  return 0;
}
