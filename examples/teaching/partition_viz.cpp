// partition_viz: pictures of what MaxViT's block (window) and grid attention group together, of one
// head of a relative-position bias from a checkpoint, and the tensor shapes through a preset.
// docs/maxvit.md shows and explains the output (its PNGs are made by this program).
//
//   partition_viz [--size H[,W]] [--partition P] [--cell PX] [--out-dir DIR] [--quiet]
//       -> DIR/window_HxW_pP.png and DIR/grid_HxW_pP.png, and the same maps as text
//   partition_viz --checkpoint FILE [--bias-key NAME] [--head N] [--out-dir DIR]
//       -> DIR/bias_head<N>.png: the (2P-1)x(2P-1) table and the (P^2)x(P^2) bias it expands to
//   partition_viz --shapes cifar|maxvit_t
//       -> every stage's output shape, from a forward of the real model
//
// Which token falls in which group is computed by the model's own code, not re-derived here: an
// H x W map holding each token's index goes through models::window_partition with the cell size of
// a real PartitionAttentionLayer (and, for the grid, its transpose(1, 2)); reading the indices back
// out of (groups, tokens) says where every token went.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC  // private to this program: no clash with another copy elsewhere
#include <stb/stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "maxgrad/core/factory.h"
#include "examples/common/flags.h"
#include "maxgrad/models/maxvit.h"
#include "maxgrad/nn/serialize/serialize.h"

using namespace mg;

namespace {

// ---------------------------------------------------------------- a tiny RGB canvas

struct Rgb {
  unsigned char r, g, b;
};

class Image {
 public:
  Image(int w, int h, Rgb fill) : w_(w), h_(h), px_(static_cast<size_t>(w) * h * 3) { rect(0, 0, w, h, fill); }
  void rect(int x0, int y0, int w, int h, Rgb c) {
    for (int y = std::max(0, y0); y < std::min(h_, y0 + h); ++y)
      for (int x = std::max(0, x0); x < std::min(w_, x0 + w); ++x) {
        unsigned char* p = &px_[(static_cast<size_t>(y) * w_ + x) * 3];
        p[0] = c.r, p[1] = c.g, p[2] = c.b;
      }
  }
  // Digits from a 3x5 pixel font, each font pixel drawn as scale x scale.
  void number(int x0, int y0, int value, int scale, Rgb c) {
    static const std::array<unsigned short, 10> glyphs = {
        // 15 bits per digit, row-major, top row first
        0x7B6F, 0x2C97, 0x73E7, 0x73CF, 0x5BC9, 0x79CF, 0x79EF, 0x7249, 0x7BEF, 0x7BCF};
    const std::string s = std::to_string(value);
    for (size_t i = 0; i < s.size(); ++i)
      for (int bit = 0; bit < 15; ++bit)
        if (glyphs[static_cast<size_t>(s[i] - '0')] >> (14 - bit) & 1)
          rect(x0 + static_cast<int>(i) * 4 * scale + (bit % 3) * scale, y0 + (bit / 3) * scale, scale, scale, c);
  }
  static int number_width(int value, int scale) {
    return (static_cast<int>(std::to_string(value).size()) * 4 - 1) * scale;
  }
  void save(const std::string& path) const {
    if (!stbi_write_png(path.c_str(), w_, h_, 3, px_.data(), w_ * 3))
      throw Error("could not write " + path + " (does the directory exist?)");
    std::printf("wrote %s (%dx%d)\n", path.c_str(), w_, h_);
  }

 private:
  int w_, h_;
  std::vector<unsigned char> px_;
};

// Distinct, light colours (so black digits stay readable): hues a golden-ratio step apart,
// HSV -> RGB by the closed form f(n) = v - v s max(0, min(k, 4 - k, 1)), k = (n + 6 h) mod 6.
Rgb group_colour(int64_t g) {
  const double h = std::fmod(0.1 + 0.618033988749895 * static_cast<double>(g), 1.0);
  const double s = g % 2 ? 0.35 : 0.55, v = 0.97;
  auto f = [&](double n) {
    const double k = std::fmod(n + 6 * h, 6.0);
    return static_cast<unsigned char>(std::lround(255 * (v - v * s * std::max(0.0, std::min({k, 4 - k, 1.0})))));
  };
  return {f(5), f(3), f(1)};
}

// Blue (negative) - white (0) - red (positive), for x in [-1, 1].
Rgb diverging(double x) {
  x = std::clamp(x, -1.0, 1.0);
  auto u8 = [](double v) { return static_cast<unsigned char>(std::lround(255 * v)); };
  const double a = std::fabs(x);
  return x >= 0 ? Rgb{255, u8(1 - 0.8 * a), u8(1 - 0.85 * a)} : Rgb{u8(1 - 0.85 * a), u8(1 - 0.8 * a), 255};
}

// ---------------------------------------------------------------- block and grid groups

struct Groups {
  int64_t h, w, ph, pw, n_groups, n_tokens;
  std::vector<int64_t> group, token;  // per map position r * w + c: its group and its place in it
};

// The groups a real PartitionAttentionLayer forms on an h x w map with partition size p.
Groups attention_groups(int64_t h, int64_t w, int64_t p, bool grid) {
  models::MaxVitConfig cfg;
  cfg.partition_size = p;
  cfg.head_dim = 1;  // one channel: only the layer's geometry (ph, pw) is used
  Generator init(0);
  models::PartitionAttentionLayer layer(1, grid, h, w, cfg, 0.0, std::make_shared<Generator>(0), init);

  // The same two steps as PartitionAttentionLayer::forward, on a map of token indices.
  Tensor index = arange(0.0, static_cast<double>(h * w), 1.0, DType::Float64).reshape({1, 1, h, w});
  Tensor t = models::window_partition(index, layer.ph, layer.pw);  // (1, groups, tokens, 1)
  if (layer.grid) t = t.transpose(1, 2);

  Groups g{h, w, layer.ph, layer.pw, t.size(1), t.size(2), {}, {}};
  g.group.assign(static_cast<size_t>(h * w), -1);
  g.token.assign(static_cast<size_t>(h * w), -1);
  for (int64_t gi = 0; gi < g.n_groups; ++gi)
    for (int64_t ti = 0; ti < g.n_tokens; ++ti) {
      const auto pos = static_cast<size_t>(t.at({0, gi, ti, 0}));
      g.group[pos] = gi;
      g.token[pos] = ti;
    }
  return g;
}

void print_groups(const Groups& g, bool grid) {
  std::printf("%s partition of a %lldx%lld map: window_partition(x, %lld, %lld)%s -> %lld groups of %lld tokens\n",
              grid ? "grid" : "window (block)", static_cast<long long>(g.h), static_cast<long long>(g.w),
              static_cast<long long>(g.ph), static_cast<long long>(g.pw), grid ? ".transpose(1, 2)" : "",
              static_cast<long long>(g.n_groups), static_cast<long long>(g.n_tokens));
  std::printf("  each position shows group:token (the token's place in its group's sequence)\n");
  for (int64_t r = 0; r < g.h; ++r) {
    std::string row = " ";
    for (int64_t c = 0; c < g.w; ++c) {
      const auto i = static_cast<size_t>(r * g.w + c);
      char cell[32];
      std::snprintf(cell, sizeof cell, " %2lld:%-2lld", static_cast<long long>(g.group[i]),
                    static_cast<long long>(g.token[i]));
      row += cell;
    }
    row.erase(row.find_last_not_of(' ') + 1);  // no trailing blanks: the docs quote these lines
    std::printf("%s\n", row.c_str());
  }
}

// Each token a cell in its group's colour, labelled with its place in the group; the cells of
// group 0 framed in black so that one group's spread is easy to follow.
void draw_groups(const Groups& g, int cell, const std::string& path) {
  const int rows = static_cast<int>(g.h), cols = static_cast<int>(g.w);
  Image img(cols * cell + 1, rows * cell + 1, Rgb{90, 90, 90});
  const int scale = std::max(1, cell / 12);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r) * cols + c;
      const int x = c * cell, y = r * cell;
      if (g.group[i] == 0) img.rect(x, y, cell + 1, cell + 1, Rgb{0, 0, 0});
      const int border = g.group[i] == 0 ? std::max(2, cell / 10) : 1;
      img.rect(x + border, y + border, cell + 1 - 2 * border, cell + 1 - 2 * border, group_colour(g.group[i]));
      const int tok = static_cast<int>(g.token[i]);
      img.number(x + (cell + 1 - Image::number_width(tok, scale)) / 2, y + (cell + 1 - 5 * scale) / 2, tok, scale,
                 Rgb{20, 20, 20});
    }
  img.save(path);
}

// ---------------------------------------------------------------- relative-position bias

void draw_bias(const std::string& checkpoint, std::optional<std::string> key, int64_t head, const std::string& dir) {
  const nn::NamedTensors tensors = serialize::load_tensors(checkpoint);
  const std::string suffix = "relative_position_bias_table";
  std::vector<std::string> candidates;
  for (const auto& [name, t] : tensors)
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      candidates.push_back(name);
  if (!key) {
    if (candidates.empty()) throw Error(checkpoint + " holds no *.relative_position_bias_table");
    key = candidates.front();
  }
  Tensor table;
  for (const auto& [name, t] : tensors)
    if (name == *key) table = t;
  if (!table.defined()) {
    std::string list;
    for (const auto& c : candidates) list += "\n  " + c;
    throw Error("no tensor '" + *key + "' in " + checkpoint + "; its bias tables are:" + list);
  }
  // ((2P-1)^2, heads) -> P
  const int64_t rows = table.size(0), heads = table.size(1), side = std::lround(std::sqrt(static_cast<double>(rows)));
  MG_CHECK(table.dim() == 2 && side * side == rows && side % 2 == 1, "partition_viz", key->c_str(), " is ",
           table.info(), ", not a ((2P-1)^2, heads) bias table");
  MG_CHECK(head >= 0 && head < heads, "partition_viz", "--head ", head, " is out of range: ", *key, " has ", heads,
           " heads");
  const int64_t p = (side + 1) / 2, n = p * p;

  // The expansion the model itself does: a RelativePositionalMultiHeadAttention with one channel
  // per head (head_dim 1), its table replaced by the checkpoint's.
  Generator gen(0);
  models::RelativePositionalMultiHeadAttention attn(heads, 1, p, false, gen);
  NoGradGuard no_grad;
  attn.relative_position_bias_table.copy_(table);
  const Tensor bias = attn.relative_positional_bias().select(0, 0).select(0, head);  // (n, n)
  const Tensor tab = table.select(1, head).reshape({side, side});                    // row: query row - key row + P - 1

  double maxabs = 0;
  for (double v : tab.to_vector()) maxabs = std::max(maxabs, std::fabs(v));
  std::printf("%s, head %lld of %lld: P = %lld, table %lldx%lld, bias %lldx%lld\n", key->c_str(),
              static_cast<long long>(head), static_cast<long long>(heads), static_cast<long long>(p),
              static_cast<long long>(side), static_cast<long long>(side), static_cast<long long>(n),
              static_cast<long long>(n));
  std::printf(
      "table[dr + %lld][dc + %lld], dr = query row - key row, dc = query column - key column"
      " (max |value| %.4f):\n",
      static_cast<long long>(p - 1), static_cast<long long>(p - 1), maxabs);
  for (int64_t r = 0; r < side; ++r) {
    std::printf("  dr %+2lld:", static_cast<long long>(r - (p - 1)));
    for (int64_t c = 0; c < side; ++c) std::printf(" %7.4f", tab.at({r, c}));
    std::printf("\n");
  }

  // Left: the table; right: the (n, n) bias, with lines between query rows / key rows of the window.
  const int panel = 256, gap = 24, k1 = panel / static_cast<int>(side), k2 = panel / static_cast<int>(n);
  const int w1 = k1 * static_cast<int>(side), w2 = k2 * static_cast<int>(n);
  Image img(w1 + gap + w2, std::max(w1, w2), Rgb{255, 255, 255});
  const double scale = maxabs > 0 ? 1.0 / maxabs : 1.0;
  for (int r = 0; r < side; ++r)
    for (int c = 0; c < side; ++c) img.rect(c * k1, r * k1, k1, k1, diverging(tab.at({r, c}) * scale));
  // Frame the zero offset (a token and itself): its value is the whole diagonal of the right panel.
  const int mid = static_cast<int>(p - 1) * k1;
  img.rect(mid, mid, k1, 2, Rgb{0, 0, 0}), img.rect(mid, mid + k1 - 2, k1, 2, Rgb{0, 0, 0});
  img.rect(mid, mid, 2, k1, Rgb{0, 0, 0}), img.rect(mid + k1 - 2, mid, 2, k1, Rgb{0, 0, 0});
  const int x0 = w1 + gap;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) img.rect(x0 + b * k2, a * k2, k2, k2, diverging(bias.at({a, b}) * scale));
  for (int i = 1; i < p; ++i) {
    img.rect(x0 + i * static_cast<int>(p) * k2, 0, 1, w2, Rgb{120, 120, 120});
    img.rect(x0, i * static_cast<int>(p) * k2, w2, 1, Rgb{120, 120, 120});
  }
  img.save(dir + "/bias_head" + std::to_string(head) + ".png");
}

// ---------------------------------------------------------------- shapes through a preset

template <typename M> std::shared_ptr<M> child(const nn::Module& m, const std::string& name) {
  for (const auto& [n, c] : m.named_children())
    if (n == name) return std::dynamic_pointer_cast<M>(c);
  throw Error("no child module '" + name + "'");
}

void line(const std::string& what, const Tensor& t, const std::string& note = "") {
  char buf[256];
  std::snprintf(buf, sizeof buf, "  %-46s %-17s %s", what.c_str(), t.shape_str().c_str(), note.c_str());
  std::string out = buf;
  out.erase(out.find_last_not_of(' ') + 1);
  std::printf("%s\n", out.c_str());
}

// "16 windows", "1 window"
std::string count(int64_t n, const std::string& noun) { return std::to_string(n) + " " + noun + (n == 1 ? "" : "s"); }
std::string n_of(int64_t n, const std::string& noun, int64_t a, int64_t b) {
  return count(n, noun) + " of " + std::to_string(a) + "x" + std::to_string(b);
}

// Runs the model piece by piece (the same modules, in the order MaxVit::forward calls them) and
// prints what comes out of each; inside the first layer of every block also the partition steps.
void print_shapes(const std::string& preset) {
  const models::MaxVitConfig cfg = models::MaxVitConfig::preset(preset);
  models::MaxVit model(cfg, 0);
  model.eval();
  NoGradGuard no_grad;
  Generator gen(1);
  Tensor x = randn({2, 3, cfg.input_h, cfg.input_w}, gen);
  std::printf("preset %s: %lld parameters, %.3f GFLOP per image forward\n", preset.c_str(),
              static_cast<long long>(model.num_parameters()), model.flops_per_image() / 1e9);
  std::printf("shapes for a batch of 2, (B, C, H, W) unless noted:\n");
  line("input", x);
  for (size_t i = 0; i < model.stem->size(); ++i) {
    x = (*model.stem)[i]->forward(x);
    line("stem." + std::to_string(i), x,
         i == 0 ? "conv3x3 stride " + std::to_string(cfg.stem_stride) + " + BN + GELU" : "conv3x3 with bias");
  }
  for (size_t b = 0; b < model.blocks->size(); ++b) {
    auto layers = child<nn::Sequential>(*(*model.blocks)[b], "layers");
    for (size_t l = 0; l < layers->size(); ++l) {
      const std::string name = "blocks." + std::to_string(b) + ".layers." + std::to_string(l) + ".layers.";
      auto parts = child<nn::Sequential>(*(*layers)[l], "layers");
      auto mb = child<models::MBConv>(*parts, "MBconv");
      if (l == 0) {  // the residual branch step by step, and the shortcut
        static const char* what[] = {"BN", "conv1x1 to 4x the output channels + BN + GELU",
                                     "conv3x3 depthwise stride 2 + BN + GELU",
                                     "a gate per channel: pool, 1x1, SiLU, 1x1, sigmoid", "conv1x1"};
        Tensor r = x;
        for (size_t i = 0; i < mb->layers->size(); ++i) {
          r = (*mb->layers)[i]->forward(r);
          line("  layers." + mb->layers->named_children()[i].first, r, what[std::min<size_t>(i, 4)]);
        }
        line("  proj (the shortcut)", mb->proj->forward(x), "AvgPool2d(3, 2, 1) + conv1x1");
      }
      x = mb->forward(x);
      line(name + "MBconv", x, l == 0 ? "proj(x) + layers(x)" : "");
      for (const char* kind : {"window_attention", "grid_attention"}) {
        auto pal = child<models::PartitionAttentionLayer>(*parts, kind);
        if (l == 0) {
          const int64_t h = x.size(2), w = x.size(3), p = cfg.partition_size;
          Tensor t = models::window_partition(x, pal->ph, pal->pw);
          const std::string cell = std::to_string(pal->ph) + ", " + std::to_string(pal->pw);
          if (!pal->grid) {
            line("  window_partition(x, " + cell + ")", t,
                 "(B, groups, tokens, C): " + n_of(t.size(1), "window", p, p));
          } else {
            line("  window_partition(x, " + cell + ")", t, n_of(t.size(1), "cell", pal->ph, pal->pw));
            t = t.transpose(1, 2);
            line("  .transpose(1, 2)", t,
                 n_of(t.size(1), "group", p, p) + ", " + count(h / p, "row") + " and " + count(w / p, "column") +
                     " apart");
          }
          auto attn = std::dynamic_pointer_cast<models::RelativePositionalMultiHeadAttention>((*pal->attn_layer)[1]);
          line("  relative_positional_bias()", attn->relative_positional_bias(), "(1, heads, tokens, tokens)");
          line("  attn_layer (LayerNorm, attention, dropout)", pal->attn_layer->forward(t));
        }
        x = pal->forward(x);
        line(name + kind, x, l == 0 ? "after the MLP and window_departition" : "");
      }
    }
  }
  static const char* what[] = {"AdaptiveAvgPool2d(1)", "Flatten", "LayerNorm", "Linear", "Tanh", "Linear, no bias"};
  for (size_t i = 0; i < model.classifier->size(); ++i) {
    x = (*model.classifier)[i]->forward(x);
    line("classifier." + std::to_string(i), x, i < 6 ? what[i] : "");
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::string> size, out_dir, checkpoint, bias_key, shapes;
  std::optional<int64_t> partition, cell, head;
  bool quiet = false;
  cli::Flags flags("partition_viz",
                   "[--size H[,W]] [--partition P] [--cell PX] [--out-dir DIR] [--quiet]\n"
                   "       partition_viz --checkpoint FILE [--bias-key NAME] [--head N] [--out-dir DIR]\n"
                   "       partition_viz --shapes cifar|maxvit_t");
  flags.add_string("size", "feature map H or H,W [8]", &size);
  flags.add_int("partition", "partition size P (window P x P; grid P x P tokens spaced H/P, W/P apart) [4]", &partition,
                1, 64);
  flags.add_int("cell", "pixels per token in the pictures [24]", &cell, 8, 128);
  flags.add_string("out-dir", "directory the PNGs go to (must exist) [.]", &out_dir);
  flags.add_switch("quiet", "do not print the maps as text", &quiet);
  flags.add_string("checkpoint", "a state_dict (safetensors): draw a relative-position bias from it", &checkpoint);
  flags.add_string("bias-key", "which *.relative_position_bias_table [the first]", &bias_key);
  flags.add_int("head", "which head of it [0]", &head, 0, 4096);
  flags.add_string("shapes", "print the shape after every stage of this preset", &shapes, {"cifar", "maxvit_t"});
  flags.parse_or_exit(argc, argv);

  try {
    const std::string dir = out_dir.value_or(".");
    if (shapes) {
      print_shapes(*shapes);
      return 0;
    }
    if (checkpoint) {
      draw_bias(*checkpoint, bias_key, head.value_or(0), dir);
      return 0;
    }
    const std::vector<int64_t> hw = cli::parse_int_list("size", size.value_or("8"));
    if (hw.size() > 2) throw cli::UsageError("--size: expected H or H,W, got '" + *size + "'");
    const int64_t h = hw[0], w = hw.size() == 2 ? hw[1] : hw[0], p = partition.value_or(4);
    if (h % p || w % p)
      throw cli::UsageError("--size " + std::to_string(h) + "," + std::to_string(w) +
                            " is not divisible by --partition " + std::to_string(p) +
                            " (MaxViT needs both sides to be multiples of P)");
    const std::string tag = std::to_string(h) + "x" + std::to_string(w) + "_p" + std::to_string(p);
    for (bool grid : {false, true}) {
      const Groups g = attention_groups(h, w, p, grid);
      if (!quiet) print_groups(g, grid);
      draw_groups(g, static_cast<int>(cell.value_or(24)), dir + "/" + (grid ? "grid_" : "window_") + tag + ".png");
    }
  } catch (const cli::UsageError& e) {
    std::cerr << "partition_viz: " << e.what() << "\n\n" << flags.usage();
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "partition_viz: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
