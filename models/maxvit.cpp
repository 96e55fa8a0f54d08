#include "maxgrad/models/maxvit.h"

#include <cmath>
#include <sstream>

namespace mg::models {

using namespace mg::nn;

// ---------------------------------------------------------------- configuration

MaxVitConfig MaxVitConfig::preset(const std::string& name) {
  MaxVitConfig c;
  if (name == "cifar") return c;
  if (name == "maxvit_t") {
    c.input_h = c.input_w = 224;
    c.stem_channels = 64;
    c.stem_stride = 2;
    c.block_channels = {64, 128, 256, 512};
    c.block_layers = {2, 2, 5, 2};
    c.head_dim = 32;
    c.partition_size = 7;
    c.num_classes = 1000;
    // torchvision's maxvit_t default, kept for parity: momentum 0.99 *in PyTorch's convention*
    // (the TensorFlow decay value; see nn/batchnorm.h). Constructing it prints the warning.
    c.bn = BatchNormOptions::pytorch(0.99, 1e-3);
    return c;
  }
  throw Error("MaxVitConfig: unknown preset '" + name + "' (known: cifar, maxvit_t)");
}

namespace {
int64_t conv_out(int64_t n, int64_t k, int64_t s, int64_t p) { return (n + 2 * p - k) / s + 1; }
}  // namespace

std::vector<std::pair<int64_t, int64_t>> MaxVitConfig::stage_sizes() const {
  std::vector<std::pair<int64_t, int64_t>> s;
  int64_t h = conv_out(input_h, 3, stem_stride, 1), w = conv_out(input_w, 3, stem_stride, 1);
  s.emplace_back(h, w);
  for (size_t i = 0; i < block_channels.size(); ++i) {
    h = conv_out(h, 3, 2, 1), w = conv_out(w, 3, 2, 1);
    s.emplace_back(h, w);
  }
  return s;
}

void MaxVitConfig::validate() const {
  std::ostringstream why;
  if (block_channels.empty() || block_channels.size() != block_layers.size())
    why << "\n  block_channels and block_layers must be non-empty and of equal length (got " << block_channels.size()
        << " and " << block_layers.size() << ")";
  if (input_h < 1 || input_w < 1 || stem_channels < 1 || head_dim < 1 || partition_size < 1 || num_classes < 1)
    why << "\n  sizes must be positive";
  if (stem_stride != 1 && stem_stride != 2) why << "\n  stem_stride must be 1 or 2, got " << stem_stride;
  if (stochastic_depth < 0 || stochastic_depth >= 1) why << "\n  stochastic_depth must be in [0, 1)";
  for (size_t i = 0; i < block_channels.size(); ++i) {
    if (head_dim > 0 && block_channels[i] % head_dim != 0)
      why << "\n  block " << i << ": channels " << block_channels[i] << " are not divisible by head_dim " << head_dim;
    if (i < block_layers.size() && block_layers[i] < 1) why << "\n  block " << i << ": needs at least one layer";
  }
  auto sizes = stage_sizes();
  for (size_t i = 1; i < sizes.size() && partition_size > 0; ++i)
    if (sizes[i].first % partition_size || sizes[i].second % partition_size || sizes[i].first < partition_size ||
        sizes[i].second < partition_size)
      why << "\n  block " << i - 1 << ": feature map " << sizes[i].first << "x" << sizes[i].second
          << " is not divisible by partition size " << partition_size;
  const std::string w = why.str();
  if (w.empty()) return;
  std::ostringstream msg;
  msg << "MaxVit: this configuration does not fit:" << w << "\n  input " << input_h << "x" << input_w
      << ", stem stride " << stem_stride << "; feature maps: stem " << sizes[0].first << "x" << sizes[0].second;
  for (size_t i = 1; i < sizes.size(); ++i)
    msg << ", block " << i - 1 << " " << sizes[i].first << "x" << sizes[i].second;
  msg << " (each block halves the size; every block's must be a multiple of the partition size)";
  throw Error(msg.str());
}

// ---------------------------------------------------------------- partitioning

namespace {
// The token row of each position p = hh * w + ww of an h x w map, cut into ph x pw cells: in the window
// order (B, h/ph, w/pw, ph, pw, C), the cell's tokens together; in the grid order (B, ph, pw, h/ph, w/pw,
// C), each group one position of every cell. to_token_rows / from_token_rows copy along these.
std::vector<int64_t> window_rows(int64_t h, int64_t w, int64_t ph, int64_t pw) {
  std::vector<int64_t> rows(static_cast<size_t>(h * w));
  for (int64_t hh = 0; hh < h; ++hh)
    for (int64_t ww = 0; ww < w; ++ww)
      rows[hh * w + ww] = ((hh / ph * (w / pw) + ww / pw) * ph + hh % ph) * pw + ww % pw;
  return rows;
}
std::vector<int64_t> grid_rows(int64_t h, int64_t w, int64_t ph, int64_t pw) {
  std::vector<int64_t> rows(static_cast<size_t>(h * w));
  for (int64_t hh = 0; hh < h; ++hh)
    for (int64_t ww = 0; ww < w; ++ww)
      rows[hh * w + ww] = ((hh % ph * pw + ww % pw) * (h / ph) + hh / ph) * (w / pw) + ww / pw;
  return rows;
}
}  // namespace

Tensor window_partition(const Tensor& x, int64_t ph, int64_t pw) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  MG_CHECK(h % ph == 0 && w % pw == 0, "window_partition", "feature map ", x.info(), " is not divisible into ", ph, "x",
           pw, " cells");
  // (B, C, H/ph, ph, W/pw, pw) -> (B, H/ph, W/pw, ph, pw, C) -> (B, groups, tokens, C): torchvision's
  // reshape and permute, as one copy
  return to_token_rows(x, window_rows(h, w, ph, pw)).reshape({b, (h / ph) * (w / pw), ph * pw, c});
}

Tensor window_departition(const Tensor& x, int64_t ph, int64_t pw, int64_t gh, int64_t gw) {
  const int64_t b = x.size(0), c = x.size(3), h = gh * ph, w = gw * pw;
  // (B, gh, gw, ph, pw, C) -> (B, C, gh, ph, gw, pw) -> (B, C, H, W)
  return from_token_rows(x.reshape({b, h * w, c}), window_rows(h, w, ph, pw), h, w);
}

Tensor grid_partition(const Tensor& x, int64_t ph, int64_t pw) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  MG_CHECK(h % ph == 0 && w % pw == 0, "grid_partition", "feature map ", x.info(), " is not divisible into ", ph, "x",
           pw, " cells");
  // (B, C, H/ph, ph, W/pw, pw) -> (B, ph, pw, H/ph, W/pw, C) -> (B, tokens of a cell, cells, C)
  return to_token_rows(x, grid_rows(h, w, ph, pw)).reshape({b, ph * pw, (h / ph) * (w / pw), c});
}

Tensor grid_departition(const Tensor& t, int64_t ph, int64_t pw, int64_t gh, int64_t gw) {
  const int64_t b = t.size(0), c = t.size(3), h = gh * ph, w = gw * pw;
  // (B, ph, pw, gh, gw, C) -> (B, C, gh, ph, gw, pw) -> (B, C, H, W)
  return from_token_rows(t.reshape({b, h * w, c}), grid_rows(h, w, ph, pw), h, w);
}

Tensor relative_position_index(int64_t p) {
  // Token t = (row, col) in a P x P window; offset (dr, dc) in [-(P-1), P-1]^2 maps to
  // (dr + P - 1) * (2P - 1) + (dc + P - 1), as torchvision's _get_relative_position_index.
  const int64_t n = p * p;
  std::vector<int64_t> idx(static_cast<size_t>(n * n));
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < n; ++b) {
      const int64_t dr = a / p - b / p + p - 1, dc = a % p - b % p + p - 1;
      idx[a * n + b] = dr * (2 * p - 1) + dc;
    }
  return Tensor::from_vector_i64(idx, {n, n});
}

// ---------------------------------------------------------------- attention

RelativePositionalMultiHeadAttention::RelativePositionalMultiHeadAttention(int64_t feat_dim, int64_t hd,
                                                                           int64_t partition_size, bool head_dim_scale,
                                                                           Generator& gen)
    : n_heads(feat_dim / hd), head_dim(hd), size(partition_size) {
  MG_CHECK(feat_dim % hd == 0, "RelativePositionalMultiHeadAttention", "feat_dim ", feat_dim,
           " must be divisible by head_dim ", hd);
  to_qkv = register_module("to_qkv", std::make_shared<Linear>(feat_dim, 3 * feat_dim, true, gen));
  merge = register_module("merge", std::make_shared<Linear>(feat_dim, feat_dim, true, gen));
  const int64_t rows = (2 * size - 1) * (2 * size - 1);
  relative_position_bias_table =
      register_parameter("relative_position_bias_table", trunc_normal({rows, n_heads}, 0.0, 0.02, gen));
  relative_position_index_buf = register_buffer("relative_position_index", relative_position_index(size));
  scale = 1.0 / std::sqrt(static_cast<double>(head_dim_scale ? hd : feat_dim));
}

Tensor RelativePositionalMultiHeadAttention::relative_positional_bias() const {
  const int64_t n = size * size;
  Tensor bias = index_select(relative_position_bias_table, 0, relative_position_index_buf.reshape({-1}));  // (n*n, H)
  return bias.reshape({n, n, n_heads}).permute({2, 0, 1}).unsqueeze(0);  // (1, H, n, n)
}

Tensor RelativePositionalMultiHeadAttention::forward(const Tensor& x) {
  const int64_t n = x.size(2);
  MG_CHECK(n == size * size, "RelativePositionalMultiHeadAttention", "expected ", size * size,
           " tokens per group (partition ", size, "x", size, "), got input ", x.info());
  // torchvision: q, k, v = to_qkv(x).chunk(3), split into heads (B, G, H, n, head_dim), k *= scale,
  // softmax(q k^T + bias) v, heads merged back to (B, G, n, C). multi_head_attention does exactly
  // that in one op, reading q, k, v in place from to_qkv's output (core/ops/attention.cpp).
  Tensor qkv = to_qkv->forward(x);  // (B, G, n, 3C)
  Tensor out = multi_head_attention(qkv, relative_positional_bias().squeeze(0), n_heads, scale);
  return merge->forward(out);
}

// ---------------------------------------------------------------- MBConv

namespace {
// torchvision's Conv2dNormActivation: conv [+ BN] [+ GELU], registered as "0", "1", "2" like
// torchvision's Sequential. With both BN and GELU, forward runs them as one op
// (BatchNorm2d::forward_gelu): the same numbers, one pass less over the activation and one fewer
// activation kept for the backward.
class ConvNormAct : public Sequential {
 public:
  Tensor forward(const Tensor& x) override {
    if (size() == 3)
      if (auto* bn = dynamic_cast<BatchNorm2d*>((*this)[1].get()))
        if (dynamic_cast<GELU*>((*this)[2].get())) return bn->forward_gelu((*this)[0]->forward(x));
    return Sequential::forward(x);
  }
};

// conv (padding (k-1)/2, bias only without a norm) [+ BN] [+ GELU]
std::shared_ptr<Sequential> conv_norm_act(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups,
                                          const MaxVitConfig* norm, bool act, Generator& gen) {
  auto s = std::make_shared<ConvNormAct>();
  s->push_back(std::make_shared<Conv2d>(
      nn::Conv2dOptions(in, out, k).stride(stride).padding((k - 1) / 2).groups(groups).bias(norm == nullptr), gen));
  if (norm) s->push_back(std::make_shared<BatchNorm2d>(out, norm->bn));
  if (act) s->push_back(std::make_shared<GELU>());
  return s;
}
}  // namespace

MBConv::MBConv(int64_t in, int64_t out, int64_t stride, const MaxVitConfig& cfg, double p_drop,
               std::shared_ptr<Generator> drop_gen, Generator& init) {
  if (stride != 1 || in != out) {
    auto p = std::make_shared<Sequential>();
    if (stride == 2) p->push_back(std::make_shared<AvgPool2d>(3, stride, 1));
    p->push_back(std::make_shared<Conv2d>(nn::Conv2dOptions(in, out, 1), init));
    proj = register_module("proj", p);
  } else {
    proj = std::make_shared<Identity>();
  }
  const int64_t mid = static_cast<int64_t>(out * cfg.expansion_ratio);
  const int64_t sqz = static_cast<int64_t>(out * cfg.squeeze_ratio);
  layers = std::make_shared<Sequential>();
  layers->add("pre_norm", std::make_shared<BatchNorm2d>(in, cfg.bn));
  layers->add("conv_a", conv_norm_act(in, mid, 1, 1, 1, &cfg, true, init));
  layers->add("conv_b", conv_norm_act(mid, mid, 3, stride, mid, &cfg, true, init));
  layers->add("squeeze_excitation", std::make_shared<SqueezeExcitation>(mid, sqz, init));
  layers->add("conv_c", std::make_shared<Conv2d>(nn::Conv2dOptions(mid, out, 1), init));
  register_module("layers", layers);
  stochastic_depth = std::make_shared<StochasticDepth>(p_drop, std::move(drop_gen));
  register_module("stochastic_depth", stochastic_depth);  // no parameters: names are unaffected
}

Tensor MBConv::forward(const Tensor& x) { return stochastic_depth->add_to(proj->forward(x), layers->forward(x)); }

// ---------------------------------------------------------------- partition attention

PartitionAttentionLayer::PartitionAttentionLayer(int64_t channels, bool is_grid, int64_t gh_, int64_t gw_,
                                                 const MaxVitConfig& cfg, double p_drop,
                                                 std::shared_ptr<Generator> drop_gen, Generator& init)
    : grid(is_grid), grid_h(gh_), grid_w(gw_) {
  const int64_t p = cfg.partition_size;
  // Window: P x P cells of neighbouring tokens. Grid: a P x P lattice of tokens spaced H/P, W/P apart,
  // made by partitioning into (H/P) x (W/P) cells and swapping the group and token axes.
  // (torchvision derives the grid cell from the height alone; this also handles H != W.)
  ph = grid ? grid_h / p : p;
  pw = grid ? grid_w / p : p;
  attn_layer = std::make_shared<Sequential>();
  attn_layer->push_back(std::make_shared<LayerNorm>(channels));
  attn_layer->push_back(
      std::make_shared<RelativePositionalMultiHeadAttention>(channels, cfg.head_dim, p, cfg.head_dim_scale, init));
  attn_layer->push_back(std::make_shared<Dropout>(0.0, drop_gen));
  mlp_layer = std::make_shared<Sequential>();
  mlp_layer->push_back(std::make_shared<LayerNorm>(channels));
  mlp_layer->push_back(std::make_shared<Linear>(channels, channels * cfg.mlp_ratio, true, init));
  mlp_layer->push_back(std::make_shared<GELU>());
  mlp_layer->push_back(std::make_shared<Linear>(channels * cfg.mlp_ratio, channels, true, init));
  mlp_layer->push_back(std::make_shared<Dropout>(0.0, drop_gen));
  register_module("attn_layer", attn_layer);
  register_module("mlp_layer", mlp_layer);
  stochastic_dropout = register_module("stochastic_dropout", std::make_shared<StochasticDepth>(p_drop, drop_gen));
}

Tensor PartitionAttentionLayer::forward(const Tensor& x) {
  MG_CHECK(x.size(2) == grid_h && x.size(3) == grid_w, "PartitionAttentionLayer", "expected a ", grid_h, "x", grid_w,
           " feature map, got ", x.info());
  // (B, groups, tokens, C). Grid: window_partition with groups and tokens swapped (the tokens of a
  // group are spread over the map), laid out in that order by the same single copy.
  Tensor t = grid ? grid_partition(x, ph, pw) : window_partition(x, ph, pw);
  t = stochastic_dropout->add_to(t, attn_layer->forward(t));  // t + stochastic_dropout(attn_layer(t))
  t = stochastic_dropout->add_to(t, mlp_layer->forward(t));
  return grid ? grid_departition(t, ph, pw, grid_h / ph, grid_w / pw)
              : window_departition(t, ph, pw, grid_h / ph, grid_w / pw);
}

// ---------------------------------------------------------------- the model

namespace {
// torchvision's MaxVitLayer and MaxVitBlock only hold a container named "layers".
class Holder : public Module {
 public:
  explicit Holder(std::shared_ptr<Sequential> l) : layers(register_module("layers", std::move(l))) {}
  Tensor forward(const Tensor& x) override { return layers->forward(x); }
  std::shared_ptr<Sequential> layers;
};
}  // namespace

MaxVit::MaxVit(const MaxVitConfig& cfg, uint64_t seed) : config(cfg) {
  cfg.validate();
  Generator init(seed);
  drop_gen = std::make_shared<Generator>(seed ^ 0x5eedULL);

  stem = std::make_shared<Sequential>();
  stem->push_back(conv_norm_act(3, cfg.stem_channels, 3, cfg.stem_stride, 1, &cfg, true, init));
  stem->push_back(conv_norm_act(cfg.stem_channels, cfg.stem_channels, 3, 1, 1, nullptr, false, init));
  register_module("stem", stem);

  const auto sizes = cfg.stage_sizes();
  int64_t total = 0;
  for (int64_t n : cfg.block_layers) total += n;
  int64_t layer_idx = 0, in = cfg.stem_channels;
  blocks = std::make_shared<Sequential>();
  for (size_t b = 0; b < cfg.block_channels.size(); ++b) {
    const int64_t out = cfg.block_channels[b], gh = sizes[b + 1].first, gw = sizes[b + 1].second;
    auto layers = std::make_shared<Sequential>();
    for (int64_t i = 0; i < cfg.block_layers[b]; ++i, ++layer_idx) {
      // np.linspace(0, p, total)[layer_idx]
      const double p =
          total > 1 ? cfg.stochastic_depth * static_cast<double>(layer_idx) / static_cast<double>(total - 1) : 0.0;
      auto l = std::make_shared<Sequential>();
      l->add("MBconv", std::make_shared<MBConv>(i == 0 ? in : out, out, i == 0 ? 2 : 1, cfg, p, drop_gen, init));
      l->add("window_attention", std::make_shared<PartitionAttentionLayer>(out, false, gh, gw, cfg, p, drop_gen, init));
      l->add("grid_attention", std::make_shared<PartitionAttentionLayer>(out, true, gh, gw, cfg, p, drop_gen, init));
      layers->push_back(std::make_shared<Holder>(l));
    }
    blocks->push_back(std::make_shared<Holder>(layers));
    in = out;
  }
  register_module("blocks", blocks);

  const int64_t c = cfg.block_channels.back();
  classifier = std::make_shared<Sequential>();
  classifier->push_back(std::make_shared<AdaptiveAvgPool2d>(1));
  classifier->push_back(std::make_shared<Flatten>());
  classifier->push_back(std::make_shared<LayerNorm>(c));
  classifier->push_back(std::make_shared<Linear>(c, c, true, init));
  classifier->push_back(std::make_shared<Tanh>());
  classifier->push_back(std::make_shared<Linear>(c, cfg.num_classes, false, init));
  register_module("classifier", classifier);

  // torchvision's _init_weights: conv and linear weights N(0, 0.02), biases 0, BatchNorm 1 and 0.
  // (LayerNorms keep 1 and 0; the bias tables were drawn trunc-normal above.)
  NoGradGuard no_grad;
  apply([&](Module& m) {
    if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
      conv->weight.copy_(normal(conv->weight.shape(), 0.0, 0.02, init));
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* lin = dynamic_cast<Linear*>(&m)) {
      lin->weight.copy_(normal(lin->weight.shape(), 0.0, 0.02, init));
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    }
  });
}

Tensor MaxVit::forward(const Tensor& x) {
  MG_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == config.input_h && x.size(3) == config.input_w, "MaxVit",
           "expected input (N, 3, ", config.input_h, ", ", config.input_w, "), got ", x.info());
  return classifier->forward(blocks->forward(stem->forward(x)));
}

double MaxVit::flops_per_image() const {
  const auto& c = config;
  const auto sizes = c.stage_sizes();
  auto conv = [](double out_hw, double out_c, double k, double in_per_group) {
    return 2 * out_hw * out_c * k * k * in_per_group;
  };
  double f = 0;
  double hw = static_cast<double>(sizes[0].first * sizes[0].second);
  f += conv(hw, c.stem_channels, 3, 3) + conv(hw, c.stem_channels, 3, c.stem_channels);
  double in = c.stem_channels;
  for (size_t b = 0; b < c.block_channels.size(); ++b) {
    const double out = c.block_channels[b], ohw = static_cast<double>(sizes[b + 1].first * sizes[b + 1].second);
    const double mid = std::floor(out * c.expansion_ratio), sqz = std::floor(out * c.squeeze_ratio);
    const double tokens = static_cast<double>(c.partition_size * c.partition_size);
    for (int64_t i = 0; i < c.block_layers[b]; ++i) {
      const double cin = i == 0 ? in : out, ihw = i == 0 ? hw : ohw;
      if (i == 0 || cin != out) f += conv(ohw, out, 1, cin);  // shortcut 1x1
      f += conv(ihw, mid, 1, cin);                            // conv_a (stride is on conv_b)
      f += conv(ohw, mid, 3, 1);                              // depthwise conv_b
      f += conv(1, sqz, 1, mid) + conv(1, mid, 1, sqz);       // squeeze-excitation
      f += conv(ohw, out, 1, mid);                            // conv_c
      for (int a = 0; a < 2; ++a) {                           // window and grid attention
        f += 2 * ohw * out * 3 * out + 2 * ohw * out * out;   // to_qkv, merge
        f += 2 * 2 * (ohw / tokens) * tokens * tokens * out;  // q k^T and attn v over all heads
        f += 2 * 2 * ohw * out * out * c.mlp_ratio;           // MLP
      }
    }
    in = out;
    hw = ohw;
  }
  f += 2 * in * in + 2 * in * c.num_classes;
  return f;
}

}  // namespace mg::models
