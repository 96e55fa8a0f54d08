#include "maxgrad/nn/serialize/checkpoint.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "maxgrad/core/runtime/crash_point.h"
#include "maxgrad/nn/serialize/atomic_file.h"
#include "maxgrad/nn/serialize/serialize.h"

namespace mg::serialize {

namespace {

const char* const kVersion = "1";
const char* const kOptimizerPrefix = "optimizer.";
const char* const kRngPrefix = "rng.";
const char* const kExtraPrefix = "extra.";
// Metadata keys the checkpoint itself writes; the caller's strings must not shadow them.
const std::set<std::string> kReserved = {"maxgrad_checkpoint", "optimizer", "epoch", "batch", "step", "data_seed"};

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// "123" -> 123; anything else (sign, spaces, overflow) is an error naming the key.
uint64_t parse_count(const std::string& path, const std::map<std::string, std::string>& meta, const std::string& key,
                     uint64_t max) {
  auto it = meta.find(key);
  MG_CHECK(it != meta.end(), "checkpoint " + path, "metadata has no '", key, "'");
  const std::string& v = it->second;
  errno = 0;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  MG_CHECK(
      !v.empty() && v.find_first_not_of("0123456789") == std::string::npos && *end == '\0' && errno == 0 && x <= max,
      "checkpoint " + path, "metadata '", key, "' is '", v, "', not a whole number in [0, ", max, "]");
  return x;
}

// A file that already exists at `path` is kept at `prev`: by a hard link when the file system has
// them (no copy, and `path` itself is never touched), else by a copy. Either way it goes through a
// temporary name, so `prev` too is always complete.
void keep_previous(const std::string& path, const std::string& prev) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  // A hard link needs a name that does not exist yet: the temporary file is made (exclusively, at an
  // unpredictable name), then replaced by the link; where links fail, it receives a copy.
  TempFile tmp = create_temp_beside(prev);
  std::remove(tmp.path.c_str());
  if (::link(path.c_str(), tmp.path.c_str()) == 0) {
    ::close(tmp.fd), tmp.fd = -1;
  } else {
    // The copy goes into the file opened exclusively above; it was removed for the link, so
    // recreate it the same way.
    discard(tmp);
    tmp = create_temp_beside(prev);
    std::ifstream in(path, std::ios::binary);
    char buf[1 << 16];
    while (in && (in.read(buf, sizeof buf) || in.gcount() > 0))
      write_all(tmp, buf, static_cast<size_t>(in.gcount()), prev);
    if (!in.eof() || in.bad()) {  // opening or reading failed before the end of the file
      discard(tmp);
      throw Error(cat("checkpoint ", path, ": cannot keep the previous checkpoint as ", prev, ": reading it failed"));
    }
    sync_and_close(tmp, prev);  // the copy's data on disk before it takes prev's name
  }
  rename_over(tmp, prev);                   // and an fsync of the folder
  crash_point("checkpoint.previous_kept");  // the crash points: core/runtime/crash_point.h
}

NamedTensors cloned(const NamedTensors& ts) {
  NamedTensors out;
  for (const auto& [n, t] : ts) out.emplace_back(n, t.detach().clone());
  return out;
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* opt, const GeneratorRefs& rngs,
                     const CheckpointInfo& info, const std::string& prev_path) {
  const std::string who = "checkpoint " + path;
  MG_CHECK(info.epoch >= 0 && info.batch >= 0 && info.step >= 0, who, "negative position epoch ", info.epoch,
           ", batch ", info.batch, ", step ", info.step);
  NamedTensors tensors;
  for (const auto& [n, t] : model.state_dict()) {
    MG_CHECK(!starts_with(n, kOptimizerPrefix) && !starts_with(n, kRngPrefix) && !starts_with(n, kExtraPrefix), who,
             "model entry '", n, "' begins with a prefix the checkpoint reserves (optimizer., rng., extra.)");
    tensors.emplace_back(n, t);
  }
  if (opt)
    for (const auto& [n, t] : opt->state()) tensors.emplace_back(kOptimizerPrefix + n, t);
  for (const auto& [n, g] : rngs) {
    MG_CHECK(g != nullptr, who, "generator '", n, "' is null");
    std::vector<int64_t> words;
    for (uint64_t w : g->state()) words.push_back(static_cast<int64_t>(w));  // bit pattern kept: two's complement
    tensors.emplace_back(kRngPrefix + n, Tensor::from_vector_i64(words, {static_cast<int64_t>(words.size())}));
  }
  for (const auto& [n, t] : info.extra) tensors.emplace_back(kExtraPrefix + n, t);

  std::map<std::string, std::string> meta = info.metadata;
  for (const std::string& k : kReserved)
    MG_CHECK(!info.metadata.count(k), who, "metadata key '", k, "' is reserved for the checkpoint itself");
  meta["maxgrad_checkpoint"] = kVersion;
  meta["optimizer"] = opt ? opt->name() : "";
  meta["epoch"] = std::to_string(info.epoch);
  meta["batch"] = std::to_string(info.batch);
  meta["step"] = std::to_string(info.step);
  meta["data_seed"] = std::to_string(info.data_seed);

  // Temporary files of a writer that was killed (SIGKILL, power cut) are removed.
  remove_stale_temporaries(path);
  if (!prev_path.empty()) remove_stale_temporaries(prev_path), keep_previous(path, prev_path);
  save_tensors(path, tensors, meta);
}

Checkpoint read_checkpoint(const std::string& path) {
  std::map<std::string, std::string> meta;
  NamedTensors tensors;
  try {
    tensors = load_tensors(path, &meta);
  } catch (const safetensors::ChecksumError&) {  // damaged: its own type, so a caller can fall back
    throw;
  } catch (const std::exception& e) {  // safetensors' own errors name the file already
    throw Error(cat("checkpoint: ", e.what()));
  }
  const std::string who = "checkpoint " + path;
  auto version = meta.find("maxgrad_checkpoint");
  MG_CHECK(version != meta.end(), who,
           "no 'maxgrad_checkpoint' metadata: this is not a training checkpoint (a plain state_dict? load it with "
           "serialize::load_state_dict)");
  MG_CHECK(version->second == kVersion, who, "format version '", version->second, "', this build reads version ",
           kVersion);

  Checkpoint ck;
  ck.path = path;
  const uint64_t kMax = uint64_t{1} << 62;
  ck.info.epoch = static_cast<int64_t>(parse_count(path, meta, "epoch", kMax));
  ck.info.batch = static_cast<int64_t>(parse_count(path, meta, "batch", kMax));
  ck.info.step = static_cast<int64_t>(parse_count(path, meta, "step", kMax));
  ck.info.data_seed = parse_count(path, meta, "data_seed", ~uint64_t{0});
  auto opt = meta.find("optimizer");
  MG_CHECK(opt != meta.end(), who, "metadata has no 'optimizer'");
  ck.optimizer_name = opt->second;
  for (const auto& [k, v] : meta)
    if (!kReserved.count(k)) ck.info.metadata[k] = v;

  for (auto& [n, t] : tensors) {
    if (starts_with(n, kOptimizerPrefix)) {
      ck.optimizer.emplace_back(n.substr(std::strlen(kOptimizerPrefix)), t);
    } else if (starts_with(n, kRngPrefix)) {
      MG_CHECK(t.dtype() == DType::Int64 && t.shape() == Shape{4}, who, "generator state '", n,
               "' must be int64 [4], got ", t.info());
      std::vector<uint64_t> words;
      const int64_t* p = t.data<int64_t>();
      for (int i = 0; i < 4; ++i) words.push_back(static_cast<uint64_t>(p[i]));
      ck.rngs[n.substr(std::strlen(kRngPrefix))] = words;
    } else if (starts_with(n, kExtraPrefix)) {
      ck.info.extra.emplace_back(n.substr(std::strlen(kExtraPrefix)), t);
    } else {
      ck.model.emplace_back(n, t);
    }
  }
  MG_CHECK(!ck.model.empty(), who, "holds no model weights");
  MG_CHECK(!ck.optimizer_name.empty() || ck.optimizer.empty(), who, "holds optimizer state but names no optimizer");
  return ck;
}

void restore_checkpoint(const Checkpoint& ck, Module& model, Optimizer* opt, const GeneratorRefs& rngs) {
  const std::string who = "checkpoint " + ck.path;
  // Everything that can be checked without touching the objects, first.
  const std::string run_opt = opt ? opt->name() : "";
  MG_CHECK(ck.optimizer_name == run_opt, who, "holds the state of optimizer '", ck.optimizer_name,
           "' but this run uses '", run_opt, "'");
  std::set<std::string> wanted;
  for (const auto& [n, g] : rngs) {
    wanted.insert(n);
    MG_CHECK(ck.rngs.count(n), who, "has no state for generator '", n, "'");
  }
  for (const auto& [n, words] : ck.rngs)
    MG_CHECK(wanted.count(n), who, "holds an unexpected generator '", printable(n), "'");

  // Module::load_state_dict and Optimizer::load_state each change nothing when they fail, but the
  // second can fail after the first succeeded: the model is snapshotted and put back in that case.
  NamedTensors model_before = cloned(model.state_dict());
  try {
    model.load_state_dict(ck.model, /*strict=*/true);
  } catch (const Error& e) {
    throw Error(cat(who, ": ", e.what()));
  }
  if (opt) {
    try {
      opt->load_state(ck.optimizer);
    } catch (const Error& e) {
      model.load_state_dict(model_before);  // same names and shapes as the model's own: cannot fail
      throw Error(cat(who, ": ", e.what(), " (nothing was loaded)"));
    }
  }
  for (const auto& [n, g] : rngs) g->set_state(ck.rngs.at(n));
}

void restore_weights(const Checkpoint& ck, Module& model) {
  try {
    model.load_state_dict(ck.model, /*strict=*/true);
  } catch (const Error& e) {
    throw Error(cat("checkpoint ", ck.path, ": ", e.what()));
  }
}

}  // namespace mg::serialize
