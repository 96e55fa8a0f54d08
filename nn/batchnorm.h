// BatchNorm2d in PyTorch's convention:
//   running = (1 - momentum) * running + momentum * batch_statistic      (default momentum 0.1)
//
// TensorFlow/Keras write the same update with a decay d = 1 - momentum:
//   moving = d * moving + (1 - d) * batch
// so Keras's 0.99 is PyTorch's 0.01. torchvision's MaxViT once shipped momentum=0.99 in PyTorch's
// convention: the TensorFlow number pasted in, which makes the running statistics follow the last
// batch almost entirely. To keep that from happening again, a TensorFlow decay is accepted only
// through the named conversion BatchNormOptions::from_tensorflow_decay, and a PyTorch momentum
// above 0.5 prints a one-time warning.
#pragma once
#include <functional>
#include <memory>
#include <optional>

#include "maxgrad/nn/module.h"
#include "maxgrad/nn/options.h"

namespace mg::dist {
class ProcessGroup;
}

namespace mg::nn {

// BatchNormOptions().eps(1e-3).momentum(0.01): named, so the two numbers cannot trade places.
// momentum is PyTorch's: running = (1 - momentum) * running + momentum * batch (docs/batchnorm.md);
// std::nullopt makes it a cumulative average over num_batches_tracked. A TensorFlow/Keras decay d is
// the other way round, and enters only through from_tensorflow_decay(d), which gives 1 - d.
struct BatchNormOptions {
  MG_ARG(double, eps, 1e-5);
  MG_ARG(std::optional<double>, momentum, 0.1);

 public:
  static BatchNormOptions pytorch(double momentum, double eps = 1e-5) {
    return BatchNormOptions().eps(eps).momentum(momentum);
  }
  static BatchNormOptions from_tensorflow_decay(double decay, double eps = 1e-3) {
    return BatchNormOptions().eps(eps).momentum(1.0 - decay);
  }
  static BatchNormOptions cumulative_average(double eps = 1e-5) {
    return BatchNormOptions().eps(eps).momentum(std::nullopt);
  }
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, BatchNormOptions options = {});
  // x (N, C, H, W). Training: batch statistics, and the running ones updated; eval: running ones.
  Tensor forward(const Tensor& x) override;
  // gelu(forward(x)) as one op (batch_norm_gelu, core/ops.h): what a BatchNorm2d followed by a GELU
  // computes, without storing the normalised tensor. (With a process_group: forward, then gelu.)
  Tensor forward_gelu(const Tensor& x);

  Tensor weight, bias;               // (C), 1 and 0
  Tensor running_mean, running_var;  // (C), 0 and 1
  Tensor num_batches_tracked;        // int64 scalar, +1 per training forward
  BatchNormOptions options;
  // Set by convert_sync_batchnorm (nn/dist/sync_batchnorm.h): training statistics over the whole global
  // batch of this group's ranks, PyTorch's SyncBatchNorm. Null (the default): this process's batch.
  std::shared_ptr<dist::ProcessGroup> process_group;
  // Set by bn_population_stats (nn/precise_bn.h) while it runs: called with every input x of a
  // training-mode forward, before it is normalised. Empty otherwise.
  std::function<void(const Tensor& x)> input_observer;

 private:
  // Checks x, counts the batch when training, and returns the momentum to use for it.
  double count_batch(const Tensor& x);
};

}  // namespace mg::nn
