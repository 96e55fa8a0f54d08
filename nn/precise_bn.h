// Precise BatchNorm statistics (fvcore's update_bn_stats, pycls's compute_precise_bn_stats,
// detectron2's PreciseBN hook). A BatchNorm's running statistics are an exponential average over
// the last ~1/momentum batches, taken while the weights were still moving: at momentum 0.01 they
// describe the models of the last hundred steps, not the current one (docs/batchnorm.md). Here
// they are recomputed for the weights as they are: the model runs over N batches with the weights
// frozen, no graph, BatchNorm normalising with each batch's own statistics (as in training) and
// stochastic depth and dropout off; every BatchNorm's input is pooled over all values of all N
// batches (each batch weighted by its count):
//   mean = E[x],   var = (E[x^2] - E[x]^2) * M / (M - 1)   over the M = sum of N * H * W values,
// the unbiased variance, as PyTorch's running_var holds it. These are exactly the running
// statistics PyTorch's BatchNorm2d records with momentum 1.0 on the N batches concatenated into
// one, for a BatchNorm whose input does not depend on another BatchNorm's (deeper ones see inputs
// normalised per batch, as in training). torch.optim.swa_utils.update_bn instead averages the
// per-batch means and unbiased variances (momentum None): that leaves out the spread of the batch
// means around the population mean, so its variance is lower by about Var(batch mean).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "maxgrad/nn/batchnorm.h"
#include "maxgrad/nn/module.h"

namespace mg::dist {
class ProcessGroup;
}

namespace mg::nn {

// One BatchNorm's input over the batches: pooled statistics and, per batch, its own.
struct BnPopulation {
  std::string name;  // the layer's state_dict prefix, e.g. "stem.0.1"
  BatchNorm2d* layer = nullptr;
  int64_t count = 0;                                       // M: values per channel over all batches (and ranks)
  std::vector<double> mean, var;                           // (C) pooled; var unbiased over M
  std::vector<std::vector<double>> batch_mean, batch_var;  // (batches, C) each batch's own, var biased
};

// Every BatchNorm2d of `model` with its state_dict prefix, in state_dict order.
std::vector<std::pair<std::string, BatchNorm2d*>> batch_norm_layers(Module& model, const std::string& prefix = "");

// Runs run_batch(i) for i = 0 .. num_batches-1 (each call feeds the model one batch: model(x)) as
// described above, and returns every BatchNorm's statistics. The model is left exactly as it was:
// parameters, buffers (running statistics, num_batches_tracked) and train/eval modes. With a group
// of several ranks (data-parallel training), each rank runs its own batches and the pooled
// statistics are those of all ranks' batches together (every rank must call this).
std::vector<BnPopulation> bn_population_stats(Module& model, int64_t num_batches,
                                              const std::function<void(int64_t)>& run_batch,
                                              const std::shared_ptr<dist::ProcessGroup>& group = nullptr);

// The same, then every BatchNorm's running_mean and running_var set to the pooled statistics
// (fvcore's update_bn_stats). Returns the statistics too.
std::vector<BnPopulation> update_bn_stats(Module& model, int64_t num_batches,
                                          const std::function<void(int64_t)>& run_batch,
                                          const std::shared_ptr<dist::ProcessGroup>& group = nullptr);

}  // namespace mg::nn
