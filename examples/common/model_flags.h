// The model flags shared by train_cifar, bench, step_dump and predict (shared/spec/cli.md).
#pragma once
#include "examples/common/flags.h"
#include "maxgrad/models/maxvit.h"

namespace mg::cli {

struct ModelFlags {
  std::optional<std::string> preset, input_size, block_channels, block_layers, dtype;
  std::optional<int64_t> stem_channels, stem_stride, head_dim, partition_size, num_classes, threads;
  std::optional<double> stochastic_depth, bn_momentum, bn_eps;

  void add_to(Flags& f);  // add_config_to, then --threads
  // The flags that describe the model, without --threads (how to run it, not what it is): what a
  // checkpoint's configuration may hold.
  void add_config_to(Flags& f);
  // The preset with every given flag applied on top; throws UsageError for a config that does
  // not fit (with the model's own explanation).
  models::MaxVitConfig config(double default_stochastic_depth) const;
  DType tensor_dtype() const { return dtype.value_or("float32") == "float64" ? DType::Float64 : DType::Float32; }
  // Applies --threads (all cores when absent).
  void apply_threads() const;
};

}  // namespace mg::cli
