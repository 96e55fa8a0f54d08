// MaxViT as torchvision builds it (torchvision/models/maxvit.py): the same modules, parameter
// names, initialisation and numerics, so weights move between the two through safetensors.
//
//   stem:        conv3x3/s (no bias) + BN + GELU, conv3x3 (bias)
//   blocks[i]:   MaxVitLayer x n:  MBConv -> window attention -> grid attention
//   classifier:  global average pool, LayerNorm, Linear, Tanh, Linear (no bias)
//
// See docs/maxvit.md for the shapes at every stage of the cifar preset.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "maxgrad/nn/batchnorm.h"
#include "maxgrad/nn/layers.h"

namespace mg::models {

struct MaxVitConfig {
  int64_t input_h = 32, input_w = 32;
  int64_t stem_channels = 32;
  int64_t stem_stride = 1;  // torchvision: 2; 1 keeps 32x32 inputs big enough to partition
  std::vector<int64_t> block_channels{32, 64, 128};
  std::vector<int64_t> block_layers{2, 2, 2};
  int64_t head_dim = 32;
  int64_t partition_size = 4;
  double stochastic_depth = 0.0;  // maximum drop-path probability, linear over all layers
  int64_t num_classes = 10;
  nn::BatchNormOptions bn = nn::BatchNormOptions().eps(1e-3).momentum(0.01);
  double squeeze_ratio = 0.25;
  double expansion_ratio = 4.0;
  int64_t mlp_ratio = 4;
  // torchvision scales k by C^-0.5 (all heads' width); the paper and timm use head_dim^-0.5.
  bool head_dim_scale = false;

  // "cifar" (the small 32x32 model) or "maxvit_t" (torchvision's maxvit_t, 224x224).
  static MaxVitConfig preset(const std::string& name);
  // Feature-map size after the stem and after each block; throws listing all of them when a
  // block's size is not divisible by the partition size or channels by head_dim.
  std::vector<std::pair<int64_t, int64_t>> stage_sizes() const;
  void validate() const;
};

// x (B, C, H, W) -> (B, H/ph * W/pw, ph*pw, C): non-overlapping ph x pw windows, one token list each.
Tensor window_partition(const Tensor& x, int64_t ph, int64_t pw);
// The inverse: (B, gh*gw, ph*pw, C) -> (B, C, gh*ph, gw*pw).
Tensor window_departition(const Tensor& x, int64_t ph, int64_t pw, int64_t gh, int64_t gw);
// window_partition(x, ph, pw).transpose(1, 2), made contiguous in that order with one copy
// (grid attention's layout: (B, ph*pw, H/ph * W/pw, C)); and its inverse,
// window_departition(t.transpose(1, 2), ph, pw, gh, gw), also with one copy.
Tensor grid_partition(const Tensor& x, int64_t ph, int64_t pw);
Tensor grid_departition(const Tensor& t, int64_t ph, int64_t pw, int64_t gh, int64_t gw);

// (P^2, P^2) int64: index into the (2P-1)^2-row bias table of the offset between two tokens.
Tensor relative_position_index(int64_t p);

class RelativePositionalMultiHeadAttention : public nn::Module {
 public:
  RelativePositionalMultiHeadAttention(int64_t feat_dim, int64_t head_dim, int64_t partition_size, bool head_dim_scale,
                                       Generator& gen);
  // x (B, G, P*P, C) -> (B, G, P*P, C): attention within each group G
  Tensor forward(const Tensor& x) override;
  Tensor relative_positional_bias() const;  // (1, heads, P*P, P*P)

  std::shared_ptr<nn::Linear> to_qkv, merge;
  Tensor relative_position_bias_table;  // ((2P-1)^2, heads)
  Tensor relative_position_index_buf;   // (P*P, P*P) int64, state_dict name relative_position_index
  int64_t n_heads, head_dim, size;
  double scale;
};

class MBConv : public nn::Module {
 public:
  MBConv(int64_t in, int64_t out, int64_t stride, const MaxVitConfig& cfg, double p_drop,
         std::shared_ptr<Generator> drop_gen, Generator& init);
  Tensor forward(const Tensor& x) override;  // proj(x) + drop_path(layers(x))
  nn::ModulePtr proj;
  std::shared_ptr<nn::Sequential> layers;
  std::shared_ptr<nn::StochasticDepth> stochastic_depth;
};

class PartitionAttentionLayer : public nn::Module {
 public:
  PartitionAttentionLayer(int64_t channels, bool grid, int64_t grid_h, int64_t grid_w, const MaxVitConfig& cfg,
                          double p_drop, std::shared_ptr<Generator> drop_gen, Generator& init);
  Tensor forward(const Tensor& x) override;  // x (B, C, H, W) -> same
  std::shared_ptr<nn::Sequential> attn_layer, mlp_layer;
  std::shared_ptr<nn::StochasticDepth> stochastic_dropout;
  bool grid;
  int64_t grid_h, grid_w, ph, pw;  // partition cell (window: P x P; grid: H/P x W/P)
};

class MaxVit : public nn::Module {
 public:
  MaxVit(const MaxVitConfig& cfg, uint64_t seed);
  Tensor forward(const Tensor& x) override;  // (B, 3, H, W) -> (B, num_classes)
  // Forward FLOPs per image: 2 x multiply-adds of convolutions, linear layers and attention matmuls.
  double flops_per_image() const;

  MaxVitConfig config;
  std::shared_ptr<Generator> drop_gen;  // stochastic depth masks (saved in checkpoints)
  std::shared_ptr<nn::Sequential> stem, blocks, classifier;
};

}  // namespace mg::models
