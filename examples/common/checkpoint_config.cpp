#include "examples/common/checkpoint_config.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace mg::cli {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);) out.push_back(item);
  return out;
}

}  // namespace

TrainFlags checkpoint_flags(const serialize::Checkpoint& ck, const std::vector<std::string>& args,
                            const std::string& program, const std::function<void(Flags&)>& add_own_flags) {
  TrainFlags saved;
  Flags from_ck(program, "");
  saved.add_config_to(from_ck);  // a file may set the model and the recipe, nothing else
  if (auto it = ck.info.metadata.find("config"); it != ck.info.metadata.end()) {
    std::vector<std::string> tokens;
    std::istringstream in(it->second);
    for (std::string t; in >> t;) tokens.push_back(t);
    from_ck.parse(tokens);
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
