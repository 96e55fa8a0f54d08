// batchnorm_step: one training-mode forward of a tiny BatchNorm2d, with the running statistics
// before and after, next to the update formula in PyTorch's and TensorFlow's conventions.
// docs/batchnorm.md walks through it, also in gdb (break mg::batch_norm_update_stats).
//
//   batchnorm_step            (no flags; --help lists none)
//
// x is (N=4, C=2, 3, 3), so each channel's statistics are taken over M = 4*3*3 = 36 values. The
// values are chosen so that the batch statistics are exact in binary: channel 0 has mean 2 and
// biased variance 1.25, channel 1 mean -1 and variance 9. The running statistics printed are read
// back from the module's buffers; the formulas beside them only restate the update.
#include <cmath>
#include <cstdio>
#include <vector>

#include "maxgrad/core/runtime/parallel.h"
#include "examples/common/flags.h"
#include "maxgrad/nn/batchnorm.h"

using namespace mg;

namespace {

constexpr int64_t kN = 4, kC = 2, kH = 3, kW = 3, kM = kN * kH * kW;

Tensor make_input() {
  std::vector<double> v(static_cast<size_t>(kN * kC * kH * kW));
  for (int64_t n = 0; n < kN; ++n)
    for (int64_t k = 0; k < kH * kW; ++k) {
      const int64_t j = n * kH * kW + k;  // position within the channel's 36 values
      v[static_cast<size_t>((n * kC + 0) * kH * kW + k)] = 0.5 + static_cast<double>(j % 4);  // 0.5 1.5 2.5 3.5 ...
      v[static_cast<size_t>((n * kC + 1) * kH * kW + k)] = j % 2 == 0 ? -4.0 : 2.0;           // -4 2 -4 2 ...
    }
  return Tensor::from_vector(v, {kN, kC, kH, kW});
}

void print_input(const Tensor& x) {
  std::printf("input x [%lld, %lld, %lld, %lld]: each line one sample's %lldx%lld map, row-major\n",
              static_cast<long long>(kN), static_cast<long long>(kC), static_cast<long long>(kH),
              static_cast<long long>(kW), static_cast<long long>(kH), static_cast<long long>(kW));
  for (int64_t c = 0; c < kC; ++c)
    for (int64_t n = 0; n < kN; ++n) {
      std::printf("  channel %lld, sample %lld:", static_cast<long long>(c), static_cast<long long>(n));
      for (int64_t i = 0; i < kH; ++i)
        for (int64_t j = 0; j < kW; ++j) std::printf(" %4.1f", x.at({n, c, i, j}));
      std::printf("\n");
    }
}

// The batch statistics BatchNorm computes internally, taken here with the library's own reductions
// (mg::mean, mg::var) so that they can be printed beside what the running buffers receive.
struct BatchStats {
  std::vector<double> mean, var_biased, var_unbiased;
};
BatchStats batch_stats(const Tensor& x) {
  BatchStats s;
  s.mean = mean(x, {0, 2, 3}).to_vector();
  s.var_biased = var(x, {0, 2, 3}, /*correction=*/0).to_vector();
  s.var_unbiased = var(x, {0, 2, 3}, /*correction=*/1).to_vector();
  return s;
}

// One training forward of a fresh BatchNorm2d(2) with PyTorch momentum m: the running statistics
// before and after.
struct Step {
  double momentum;
  std::vector<double> mean_before, var_before, mean_after, var_after;
};
Step one_step(const Tensor& x, double m) {
  nn::BatchNorm2d bn(kC, nn::BatchNormOptions::pytorch(m));
  bn.train();
  Step st{m, bn.running_mean.to_vector(), bn.running_var.to_vector(), {}, {}};
  bn(x);
  st.mean_after = bn.running_mean.to_vector();
  st.var_after = bn.running_var.to_vector();
  return st;
}

void print_step(const Step& st, const BatchStats& s) {
  const double m = st.momentum, d = 1.0 - m;  // d: the same update as a TensorFlow/Keras decay
  std::printf("\n== momentum %g (PyTorch convention) = decay %g (TensorFlow/Keras convention) ==\n", m, d);
  std::printf("  PyTorch:     running = (1 - m) * running + m * batch,   m = %g\n", m);
  std::printf("  TensorFlow:  moving  = d * moving + (1 - d) * batch,    d = %g\n", d);
  std::printf("  each step keeps %g%% of the running value and takes %g%% of the batch's\n", 100 * d, 100 * m);
  for (size_t c = 0; c < static_cast<size_t>(kC); ++c) {
    std::printf("  channel %zu\n", c);
    std::printf("    running_mean %9.6f -> %9.6f   = %g * %g + %g * %g\n", st.mean_before[c], st.mean_after[c], d,
                st.mean_before[c], m, s.mean[c]);
    std::printf("    running_var  %9.6f -> %9.6f   = %g * %g + %g * %.6f (the unbiased batch variance)\n",
                st.var_before[c], st.var_after[c], d, st.var_before[c], m, s.var_unbiased[c]);
  }
}

// Training steps, on the same batch each time, until running_mean[0] has covered half the way
// from its start (0) to the batch mean (2): measured with the module itself.
int64_t measured_halfway_steps(const Tensor& x, double m, double target) {
  nn::BatchNorm2d bn(kC, nn::BatchNormOptions::pytorch(m));
  bn.train();
  int64_t steps = 0;
  while (bn.running_mean.at({0}) < target / 2 && steps < 100000) {
    bn(x);
    ++steps;
  }
  return steps;
}

}  // namespace

int main(int argc, char** argv) {
  cli::Flags flags("batchnorm_step", "(no flags)");
  flags.parse_or_exit(argc, argv);
  // One thread: the example is tiny, and under gdb a single thread keeps the session free of
  // thread-pool start-up and lets `next` stay on the calling thread.
  set_num_threads(1);

  const Tensor x = make_input();
  const BatchStats s = batch_stats(x);

  // The momentum-0.01 forward runs before anything is printed, so the gdb session of
  // docs/batchnorm.md stops in it with the program's output still empty.
  const Step good = one_step(x, 0.01);

  print_input(x);
  std::printf("\nbatch statistics per channel over its M = %lld values:\n", static_cast<long long>(kM));
  std::printf("  channel   mean        biased var (/M)   unbiased var (/(M-1)) = biased * %lld/%lld\n",
              static_cast<long long>(kM), static_cast<long long>(kM - 1));
  for (size_t c = 0; c < static_cast<size_t>(kC); ++c)
    std::printf("  %7zu   %9.6f   %15.6f   %21.6f\n", c, s.mean[c], s.var_biased[c], s.var_unbiased[c]);
  std::printf(
      "  the forward normalises with the biased variance; running_var, an estimate of the\n"
      "  population variance for evaluation, is updated with the unbiased one\n");
  print_step(good, s);

  // The mistaken value: TensorFlow's decay 0.99 pasted in as PyTorch's momentum (torchvision's MaxViT
  // before pytorch/vision#8312). BatchNorm2d warns about it once, on stderr: flush stdout first so
  // the warning appears where it happens.
  std::fflush(stdout);
  print_step(one_step(x, 0.99), s);

  std::printf("\nsteps until running_mean[0] is halfway from 0 to the batch mean %g (the same batch every step):\n",
              s.mean[0]);
  std::printf("  after k steps the remaining gap is (1 - m)^k, so k = ceil(ln 0.5 / ln(1 - m))\n");
  for (double m : {0.01, 0.99}) {
    const int64_t formula = static_cast<int64_t>(std::ceil(std::log(0.5) / std::log(1.0 - m)));
    std::printf("  momentum %-4g (decay %-4g): formula %lld, measured with BatchNorm2d %lld\n", m, 1 - m,
                static_cast<long long>(formula), static_cast<long long>(measured_halfway_steps(x, m, s.mean[0])));
  }
  return 0;
}
