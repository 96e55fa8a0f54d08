// bench: training or inference throughput of a MaxViT on random data (shared/spec/cli.md).
//   bench [model flags] [--batch 128] [--steps 10] [--warmup 2] [--mode train|eval] [--profile[-shapes]]
// The last line of stdout is one JSON object; ms_per_step is the median over the timed steps.
// --profile: after the timed steps, a table on stderr of where their time went, op by op
// (core/runtime/profiler.h), per step.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "examples/common/model_flags.h"
#include "maxgrad/core/runtime/blas_select.h"
#include "maxgrad/core/runtime/isa.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/core/runtime/profiler.h"
#include "maxgrad/nn/optim/optim.h"

using namespace mg;

int main(int argc, char** argv) {
  select_blas_kernels(argc, argv);
  cli::ModelFlags mf;
  std::optional<int64_t> batch, steps, warmup;
  std::optional<std::string> mode;
  bool profile = false, profile_shapes = false;
  cli::Flags flags("bench",
                   "[model flags] [--batch 128] [--steps 10] [--warmup 2] [--mode train|eval] [--profile[-shapes]]");
  mf.add_to(flags);
  flags.add_int("batch", "images per step [128]", &batch, 1, 1 << 20);
  flags.add_int("steps", "timed steps [10]", &steps, 1, 1 << 20);
  flags.add_int("warmup", "untimed steps first [2]", &warmup, 0, 1 << 20);
  flags.add_string("mode", "train (forward, loss, backward, AdamW) or eval (forward only) [train]", &mode,
                   {"train", "eval"});
  flags.add_switch("profile", "print on stderr where the timed steps' time went, op by op", &profile);
  flags.add_switch("profile-shapes", "the same, an entry per op and input shapes", &profile_shapes);
  flags.parse_or_exit(argc, argv);
  models::MaxVitConfig cfg;
  try {
    cfg = mf.config(0.1);
  } catch (const cli::UsageError& e) {
    std::cerr << "bench: " << e.what() << "\n\n" << flags.usage();
    return 2;
  }
  mf.apply_threads();
  std::fprintf(stderr, "bench: kernels %s, %d threads\n", kernel_isa_description().c_str(), get_num_threads());
  const bool train = mode.value_or("train") == "train";
  const int64_t n = batch.value_or(128);
  try {
    const DType dt = mf.tensor_dtype();
    models::MaxVit model(cfg, 0);
    model.to(dt);
    Generator gen(1);
    Tensor x = randn({n, 3, cfg.input_h, cfg.input_w}, gen, dt);
    std::vector<int64_t> labels(static_cast<size_t>(n));
    for (auto& l : labels) l = gen.randint(cfg.num_classes);
    Tensor y = Tensor::from_vector_i64(labels, {n});
    optim::AdamW opt(model.parameters(), optim::AdamWOptions(1e-4).weight_decay(0.05));
    model.train(train);

    auto one_step = [&] {
      if (train) {
        {
          profiler::Scope s("optimizer.zero_grad");
          opt.zero_grad();
        }
        Tensor loss = cross_entropy(model(x), y);
        loss.backward();
        profiler::Scope s("optimizer.step");
        opt.step();
      } else {
        NoGradGuard no_grad;
        model(x);
      }
    };
    for (int64_t i = 0; i < warmup.value_or(2); ++i) one_step();
    // Wall time is what counts; the process's CPU time (all threads) is printed too, because on a
    // machine shared with other work it shows the cost of a step without the time spent waiting.
    auto cpu_ms = [] {
      timespec t;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
      return 1e3 * static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_nsec);
    };
    std::vector<double> ms, cpu;
    profile = profile || profile_shapes;
    profiler::enable(profile, profile_shapes);  // the timed steps only
    for (int64_t i = 0; i < steps.value_or(10); ++i) {
      auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_ms();
      one_step();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      cpu.push_back(cpu_ms() - c0);
      std::fprintf(stderr, "step %lld: %.1f ms (cpu %.1f ms)\n", static_cast<long long>(i), ms.back(), cpu.back());
    }
    if (profile) {
      profiler::enable(false);
      std::fprintf(stderr, "%s", profiler::report(steps.value_or(10)).c_str());
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
    };
    const double med = median(ms);
    std::printf(
        "{\"preset\":\"%s\",\"mode\":\"%s\",\"batch\":%lld,\"threads\":%d,\"ms_per_step\":%.3f,"
        "\"img_per_s\":%.3f,\"gflop_per_img\":%.4f,\"cpu_ms_per_step\":%.3f,\"isa\":\"%s\"}\n",
        mf.preset.value_or("cifar").c_str(), train ? "train" : "eval", static_cast<long long>(n), get_num_threads(),
        med, 1000.0 * static_cast<double>(n) / med, model.flops_per_image() / 1e9, median(cpu), kernel_isa().c_str());
  } catch (const std::exception& e) {
    std::cerr << "bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
