#include "maxgrad/nn/batchnorm.h"

#include <atomic>
#include <iostream>

#include "maxgrad/core/factory.h"
#include "maxgrad/nn/dist/sync_batchnorm.h"

namespace mg::nn {

namespace {
void warn_if_tensorflow_decay(double momentum) {
  static std::atomic<bool> warned{false};
  if (momentum <= 0.5 || warned.exchange(true)) return;
  std::cerr << "maxgrad warning: BatchNorm2d momentum " << momentum
            << " is in PyTorch's convention (running = (1 - m) * running + m * batch), so each batch replaces "
            << momentum * 100 << "% of the running statistics. If " << momentum
            << " is a TensorFlow/Keras decay, use BatchNormOptions::from_tensorflow_decay(" << momentum
            << ") (= momentum " << 1 - momentum << "). This warning is shown once.\n";
}
}  // namespace

BatchNorm2d::BatchNorm2d(int64_t channels, BatchNormOptions opts) : options(opts) {
  MG_CHECK(channels > 0, "BatchNorm2d", "channels must be positive, got ", channels);
  MG_CHECK(options.eps() > 0, "BatchNorm2d", "eps must be positive, got ", options.eps());
  if (options.momentum()) {
    MG_CHECK(*options.momentum() >= 0 && *options.momentum() <= 1, "BatchNorm2d", "momentum must be in [0, 1], got ",
             *options.momentum());
    warn_if_tensorflow_decay(*options.momentum());
  }
  weight = register_parameter("weight", ones({channels}));
  bias = register_parameter("bias", zeros({channels}));
  running_mean = register_buffer("running_mean", zeros({channels}));
  running_var = register_buffer("running_var", ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::Int64));
}

double BatchNorm2d::count_batch(const Tensor& x) {
  MG_CHECK(x.dim() == 4 && x.size(1) == weight.size(0), "BatchNorm2d", "expected input (N, ", weight.size(0),
           ", H, W), got ", x.info());
  double momentum = options.momentum().value_or(0.0);
  if (is_training()) {
    if (input_observer) input_observer(x);
    NoGradGuard no_grad;
    num_batches_tracked.fill_(num_batches_tracked.item() + 1);
    // Cumulative average: the k-th batch gets weight 1/k.
    if (!options.momentum()) momentum = 1.0 / num_batches_tracked.item();
  }
  return momentum;
}

Tensor BatchNorm2d::forward_gelu(const Tensor& x) {
  if (is_training() && process_group) return gelu(forward(x));  // SyncBatchNorm: not fused
  const double momentum = count_batch(x);
  return batch_norm_gelu(x, running_mean, running_var, weight, bias, is_training(), momentum, options.eps());
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  const double momentum = count_batch(x);
  if (is_training() && process_group)
    return dist::sync_batch_norm(x, running_mean, running_var, weight, bias, momentum, options.eps(), process_group);
  return batch_norm(x, running_mean, running_var, weight, bias, is_training(), momentum, options.eps());
}

}  // namespace mg::nn
