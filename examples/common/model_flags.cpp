#include "examples/common/model_flags.h"

#include "maxgrad/core/runtime/parallel.h"

namespace mg::cli {

void ModelFlags::add_to(Flags& f) {
  add_config_to(f);
  f.add_int("threads", "worker threads for TBB and OpenBLAS together [all cores]", &threads, 1, 1024);
}

void ModelFlags::add_config_to(Flags& f) {
  f.add_string("preset", "cifar (small MaxViT, 32x32) or maxvit_t (torchvision's, 224x224) [cifar]", &preset,
               {"cifar", "maxvit_t"});
  f.add_string("input-size", "H[,W] input image size [32]", &input_size);
  f.add_int("stem-channels", "stem width [32]", &stem_channels, 1, 4096);
  f.add_int("stem-stride", "stride of the first stem conv, 1 or 2 [1]", &stem_stride, 1, 2);
  f.add_string("block-channels", "channels per stage a,b,c [32,64,128]", &block_channels);
  f.add_string("block-layers", "MaxViT layers per stage a,b,c [2,2,2]", &block_layers);
  f.add_int("head-dim", "attention head width [32]", &head_dim, 1, 4096);
  f.add_int("partition-size", "window/grid size [4]", &partition_size, 1, 1024);
  f.add_double("stochastic-depth", "max drop-path probability, linear over layers", &stochastic_depth, 0.0, 0.99);
  f.add_int("num-classes", "classifier outputs [10]", &num_classes, 1, 100000);
  f.add_double("bn-momentum", "BatchNorm momentum, PyTorch convention (1-m)*running + m*batch [0.01]", &bn_momentum,
               0.0, 1.0);
  f.add_double("bn-eps", "BatchNorm epsilon [1e-3]", &bn_eps, 1e-12, 1.0);
  f.add_string("dtype", "tensor precision float32|float64 [float32]", &dtype, {"float32", "float64"});
}

models::MaxVitConfig ModelFlags::config(double default_stochastic_depth) const {
  models::MaxVitConfig c = models::MaxVitConfig::preset(preset.value_or("cifar"));
  if (input_size) {
    auto v = parse_int_list("input-size", *input_size);
    if (v.size() > 2) throw UsageError("--input-size: expected H or H,W, got '" + *input_size + "'");
    c.input_h = v[0];
    c.input_w = v.size() == 2 ? v[1] : v[0];
  }
  if (stem_channels) c.stem_channels = *stem_channels;
  if (stem_stride) c.stem_stride = *stem_stride;
  if (block_channels) c.block_channels = parse_int_list("block-channels", *block_channels);
  if (block_layers) c.block_layers = parse_int_list("block-layers", *block_layers);
  if (head_dim) c.head_dim = *head_dim;
  if (partition_size) c.partition_size = *partition_size;
  c.stochastic_depth = stochastic_depth.value_or(default_stochastic_depth);
  if (num_classes) c.num_classes = *num_classes;
  if (bn_momentum) c.bn.momentum(*bn_momentum);
  if (bn_eps) c.bn.eps(*bn_eps);
  try {
    c.validate();
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  return c;
}

void ModelFlags::apply_threads() const { set_num_threads(threads ? static_cast<int>(*threads) : 0); }

}  // namespace mg::cli
