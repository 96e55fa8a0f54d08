#include "examples/common/checkpoint_config.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

namespace mg::cli {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);) out.push_back(item);
  return out;
}

std::string to_string_shape(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

void check_config_fits(const models::MaxVitConfig& cfg, const serialize::Checkpoint& ck) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& [name, t] : ck.model) shapes[name] = t.shape();
  // "blocks.S.layers.L." prefixes: how many stages, and layers in each.
  std::map<int64_t, std::set<int64_t>> layers;
  for (const auto& [name, shape] : shapes) {
    int64_t s = -1, l = -1;
    char dot = 0;
    if (std::sscanf(name.c_str(), "blocks.%" SCNd64 ".layers.%" SCNd64 "%c", &s, &l, &dot) == 3 && dot == '.' &&
        s >= 0 && l >= 0)
      layers[s].insert(l);
  }
  std::ostringstream why;
  auto dim0 = [&](const std::string& name, int64_t want, const char* what) {
    const auto it = shapes.find(name);
    if (it == shapes.end() || it->second.empty() || it->second[0] != want)
      why << "\n  " << what << " " << want << ", but " << name
          << (it == shapes.end() ? std::string(" is missing") : " has shape " + to_string_shape(it->second));
  };
  const auto stages = static_cast<int64_t>(cfg.block_layers.size());
  if (static_cast<int64_t>(layers.size()) != stages)
    why << "\n  " << stages << " stages, but the tensors hold " << layers.size();
  if (cfg.input_h > kMaxCheckpointInputSide || cfg.input_w > kMaxCheckpointInputSide)
    why << "\n  an input of " << cfg.input_h << "x" << cfg.input_w << ", more than the " << kMaxCheckpointInputSide
        << " a side a checkpoint may ask for";
  dim0("stem.0.0.weight", cfg.stem_channels, "a stem of");
  dim0("classifier.5.weight", cfg.num_classes, "classes:");
  for (int64_t s = 0; s < stages && why.str().empty(); ++s) {
    const auto l = static_cast<size_t>(s);
    const auto it = layers.find(s);
    const size_t have = it == layers.end() ? 0 : it->second.size();
    if (static_cast<int64_t>(have) != cfg.block_layers[l]) {
      why << "\n  " << cfg.block_layers[l] << " layers in stage " << s << ", but the tensors hold " << have;
      continue;
    }
    const std::string layer0 = "blocks." + std::to_string(s) + ".layers.0.layers.";
    dim0(layer0 + "MBconv.layers.conv_c.weight", cfg.block_channels[l], "stage width");
    // (2P-1)^2 relative positions by heads = channels / head_dim
    const auto table = shapes.find(layer0 + "window_attention.attn_layer.1.relative_position_bias_table");
    const int64_t side = 2 * cfg.partition_size - 1, heads = cfg.block_channels[l] / cfg.head_dim;
    if (table == shapes.end() || table->second != std::vector<int64_t>{side * side, heads})
      why << "\n  partition size " << cfg.partition_size << " and " << heads << " heads in stage " << s
          << ", but its relative_position_bias_table "
          << (table == shapes.end() ? std::string("is missing") : "has shape " + to_string_shape(table->second));
  }
  const std::string w = why.str();
  if (!w.empty())
    throw Error("checkpoint " + ck.path +
                ": the model flags do not describe its tensors (its saved configuration, with any model flags of "
                "the command line over it); the model is not built:\n  they ask for" +
                w);
}

TrainFlags checkpoint_flags(const serialize::Checkpoint& ck, const std::vector<std::string>& args,
                            const std::string& program, const std::function<void(Flags&)>& add_own_flags) {
  TrainFlags saved;
  Flags from_ck(program, "");
  saved.add_config_to(from_ck);  // a file may set the model and the recipe, nothing else
  if (auto it = ck.info.metadata.find("config"); it != ck.info.metadata.end()) {
    std::vector<std::string> tokens;
    std::istringstream in(it->second);
    for (std::string t; in >> t;) tokens.push_back(t);
    try {
      from_ck.parse(tokens);
    } catch (const UsageError& e) {  // the tokens are the file's: escaped and cut short
      throw UsageError("checkpoint " + ck.path + " has an unreadable 'config' (" + printable(e.what(), 500) + ")");
    }
  }
  Flags over(program, "");
  saved.model.add_to(over);
  add_own_flags(over);
  over.parse(args);
  return saved;
}

data::Normalization checkpoint_normalization(const serialize::Checkpoint& ck) {
  data::Normalization n = data::kCifar10Norm;
  auto mean = ck.info.metadata.find("normalize_mean"), sd = ck.info.metadata.find("normalize_std");
  if (mean == ck.info.metadata.end() || sd == ck.info.metadata.end()) return n;
  const auto m = split(mean->second, ','), s = split(sd->second, ',');
  MG_CHECK(m.size() == 3 && s.size() == 3, "checkpoint " + ck.path, "normalize_mean/std must list 3 numbers each");
  // Each a whole finite number (no "0.5abc"); a standard deviation above 0 (it divides every pixel).
  auto number = [&](const std::string& text, bool positive) {
    char* end = nullptr;
    const float v = std::strtof(text.c_str(), &end);
    MG_CHECK(!text.empty() && *end == '\0' && std::isfinite(v) && (!positive || v > 0), "checkpoint " + ck.path,
             "normalize_mean/std: '", text, "' is not a ", positive ? "positive " : "", "finite number");
    return v;
  };
  for (size_t c = 0; c < 3; ++c) n.mean[c] = number(m[c], false), n.stddev[c] = number(s[c], true);
  return n;
}

}  // namespace mg::cli
