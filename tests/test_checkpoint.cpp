// Checkpoints (nn/serialize/checkpoint.h): a round trip restores every number, a resumed run continues bitwise
// like an uninterrupted one (stochastic depth included), every kind of bad file is refused with a
// message naming it while model, optimiser and generators stay untouched, and the previous
// checkpoint is kept.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "helpers.h"
#include "maxgrad/models/maxvit.h"
#include "maxgrad/nn/serialize/checkpoint.h"
#include "maxgrad/nn/serialize/serialize.h"
#include "temp_dir.h"

using namespace mg;
namespace fs = std::filesystem;
using mg::testing::bitwise_equal;
using mg::testing::TempDir;

namespace {

// A MaxViT small enough to step in milliseconds, with drop-path on so its generator matters.
models::MaxVitConfig tiny_config(int64_t channels = 8) {
  models::MaxVitConfig c;
  c.input_h = c.input_w = 8;
  c.stem_channels = 8;
  c.block_channels = {channels};
  c.block_layers = {1};
  c.head_dim = 8;
  c.partition_size = 2;
  c.stochastic_depth = 0.5;
  return c;
}

struct Run {
  models::MaxVit model;
  optim::AdamW opt;
  Generator data{7};
  explicit Run(const models::MaxVitConfig& c = tiny_config(), uint64_t seed = 1)
      : model(c, seed), opt(model.parameters(), optim::AdamWOptions(1e-2).weight_decay(0.05)) {}
  serialize::GeneratorRefs rngs() { return {{"drop_path", model.drop_gen.get()}}; }
  void steps(int n) {
    model.train();
    for (int i = 0; i < n; ++i) {
      Tensor x = randn({4, 3, 8, 8}, data);
      Tensor y = Tensor::from_vector_i64({0, 3, 5, 9}, {4});
      opt.zero_grad();
      cross_entropy(model(x), y).backward();
      opt.step();
    }
  }
};

bool same_state(const nn::NamedTensors& a, const nn::NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || !bitwise_equal(a[i].second, b[i].second)) return false;
  return true;
}

nn::NamedTensors snapshot(const nn::NamedTensors& ts) {
  nn::NamedTensors out;
  for (const auto& [n, t] : ts) out.emplace_back(n, t.detach().clone());
  return out;
}

serialize::CheckpointInfo some_info() {
  serialize::CheckpointInfo info;
  info.epoch = 3, info.batch = 17, info.step = 95, info.data_seed = 0xFFFFFFFFFFFFFFF0ull;
  info.metadata = {{"config", "--epochs 12 --lr 0.002"}, {"recipe", "AdamW"}};
  info.extra = {{"history", Tensor::from_vector({1.5, 0.25, 2.0, 0.5}, {2, 2}, DType::Float64)}};
  return info;
}

// The message of the mg::Error f throws ("" if none).
template <typename F> std::string error_of(F&& f) { return mg::testing::error_message(f); }

}  // namespace

TEST_CASE("a checkpoint round trip restores model, optimiser, generator, position and extras") {
  TempDir dir;
  Run a;
  a.steps(2);
  const std::string path = dir / "last.safetensors";
  serialize::save_checkpoint(path, a.model, &a.opt, a.rngs(), some_info());

  serialize::Checkpoint ck = serialize::read_checkpoint(path);
  CHECK(ck.info.epoch == 3);
  CHECK(ck.info.batch == 17);
  CHECK(ck.info.step == 95);
  CHECK(ck.info.data_seed == 0xFFFFFFFFFFFFFFF0ull);
  CHECK(ck.info.metadata.at("config") == "--epochs 12 --lr 0.002");
  CHECK(ck.info.metadata.at("recipe") == "AdamW");
  CHECK(ck.info.metadata.count("step") == 0);  // the checkpoint's own keys are parsed, not passed on
  CHECK(ck.optimizer_name == "AdamW");
  REQUIRE(ck.info.extra.size() == 1);
  CHECK(bitwise_equal(ck.info.extra[0].second, some_info().extra[0].second));

  Run b(tiny_config(), /*seed=*/99);  // different initial weights and generator
  serialize::restore_checkpoint(ck, b.model, &b.opt, b.rngs());
  CHECK(same_state(b.model.state_dict(), a.model.state_dict()));
  CHECK(same_state(b.opt.state(), a.opt.state()));
  CHECK(b.model.drop_gen->state() == a.model.drop_gen->state());

  // The model's names are torchvision's, unprefixed: the file loads as a state_dict (non-strictly).
  std::map<std::string, std::string> meta;
  nn::NamedTensors raw = serialize::load_tensors(path, &meta);
  CHECK(meta.at("epoch") == "3");
  CHECK(meta.at("step") == "95");
  bool has_plain_name = false;
  for (const auto& [n, t] : raw) has_plain_name = has_plain_name || n == "stem.0.0.weight";
  CHECK(has_plain_name);
}

TEST_CASE("training resumed from a checkpoint continues bitwise like an uninterrupted run") {
  TempDir dir;
  Run straight;
  straight.steps(3);
  const std::string path = dir / "last.safetensors";
  serialize::save_checkpoint(path, straight.model, &straight.opt, straight.rngs(), {});
  const std::vector<uint64_t> data_state = straight.data.state();
  straight.steps(3);

  Run resumed(tiny_config(), /*seed=*/5);
  serialize::restore_checkpoint(serialize::read_checkpoint(path), resumed.model, &resumed.opt, resumed.rngs());
  resumed.data.set_state(data_state);
  resumed.steps(3);
  CHECK(same_state(resumed.model.state_dict(), straight.model.state_dict()));
  CHECK(same_state(resumed.opt.state(), straight.opt.state()));
  CHECK(resumed.model.drop_gen->state() == straight.model.drop_gen->state());
}

TEST_CASE("a bad checkpoint is refused, naming the file, and nothing changes") {
  TempDir dir;
  Run saved;
  saved.steps(1);
  const std::string good = dir / "good.safetensors";
  serialize::save_checkpoint(good, saved.model, &saved.opt, saved.rngs(), some_info());

  Run target(tiny_config(), 42);
  target.steps(1);
  const nn::NamedTensors model_before = snapshot(target.model.state_dict());
  const nn::NamedTensors opt_before = snapshot(target.opt.state());
  const std::vector<uint64_t> gen_before = target.model.drop_gen->state();
  auto unchanged = [&] {
    CHECK(same_state(target.model.state_dict(), model_before));
    CHECK(same_state(target.opt.state(), opt_before));
    CHECK(target.model.drop_gen->state() == gen_before);
  };
  auto restore = [&](const std::string& path) {
    return error_of([&] {
      serialize::restore_checkpoint(serialize::read_checkpoint(path), target.model, &target.opt, target.rngs());
    });
  };
  // A copy of the good file with some tensors or metadata changed.
  auto variant = [&](const std::string& name, auto edit) {
    std::map<std::string, std::string> meta;
    nn::NamedTensors ts = serialize::load_tensors(good, &meta);
    edit(ts, meta);
    const std::string path = dir / name;
    serialize::save_tensors(path, ts, meta);
    return path;
  };

  SUBCASE("missing file") {
    const std::string msg = restore(dir / "nope.safetensors");
    CHECK(msg.find("nope.safetensors") != std::string::npos);
  }
  SUBCASE("a plain state_dict, not a checkpoint") {
    const std::string path = dir / "weights.safetensors";
    serialize::save_state_dict(saved.model, path);
    const std::string msg = restore(path);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("not a training checkpoint") != std::string::npos);
  }
  SUBCASE("truncated file") {
    const std::string path = dir / "cut.safetensors";
    fs::copy_file(good, path);
    fs::resize_file(path, fs::file_size(path) - 100);
    CHECK(restore(path).find(path) != std::string::npos);
  }
  SUBCASE("a model of another shape: every offending key is named") {
    Run other(tiny_config(16), 1);
    const std::string path = dir / "wide.safetensors";
    serialize::save_checkpoint(path, other.model, &other.opt, other.rngs(), {});
    const std::string msg = restore(path);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("blocks.0.layers.0.layers.MBconv.proj.1.weight") != std::string::npos);
  }
  SUBCASE("the model fits but the optimiser state does not (the model is put back)") {
    const std::string path = variant("opt.safetensors", [](nn::NamedTensors& ts, auto&) {
      for (auto& [n, t] : ts)
        if (n == "optimizer.exp_avg.3") t = zeros({7, 7, 7}, DType::Float32);
    });
    const std::string msg = restore(path);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("exp_avg.3") != std::string::npos);
    CHECK(msg.find("[7, 7, 7]") != std::string::npos);
  }
  SUBCASE("another optimiser's state") {
    optim::SGD sgd(saved.model.parameters(), optim::SGDOptions(0.1).momentum(0.9));
    const std::string path = dir / "sgd.safetensors";
    serialize::save_checkpoint(path, saved.model, &sgd, saved.rngs(), {});
    CHECK(restore(path).find("optimizer 'SGD' but this run uses 'AdamW'") != std::string::npos);
  }
  SUBCASE("generator state missing or malformed") {
    const std::string none = variant("norng.safetensors", [](nn::NamedTensors& ts, auto&) {
      ts.erase(std::remove_if(ts.begin(), ts.end(), [](const auto& e) { return e.first == "rng.drop_path"; }),
               ts.end());
    });
    CHECK(restore(none).find("no state for generator 'drop_path'") != std::string::npos);
    const std::string bad = variant("badrng.safetensors", [](nn::NamedTensors& ts, auto&) {
      for (auto& [n, t] : ts)
        if (n == "rng.drop_path") t = zeros({3}, DType::Float32);
    });
    CHECK(restore(bad).find("'rng.drop_path' must be int64 [4]") != std::string::npos);
  }
  SUBCASE("position metadata that is not a count") {
    const std::string path =
        variant("meta.safetensors", [](auto&, std::map<std::string, std::string>& m) { m["step"] = "-3"; });
    const std::string msg = restore(path);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("'step' is '-3'") != std::string::npos);
  }
  unchanged();
}

TEST_CASE("saving keeps the previous checkpoint and refuses reserved metadata") {
  TempDir dir;
  Run a;
  const std::string last = dir / "last.safetensors", prev = dir / "prev.safetensors";
  serialize::CheckpointInfo info;
  info.step = 1;
  serialize::save_checkpoint(last, a.model, &a.opt, a.rngs(), info, prev);
  CHECK(!fs::exists(prev));  // nothing to keep yet
  info.step = 2;
  serialize::save_checkpoint(last, a.model, &a.opt, a.rngs(), info, prev);
  CHECK(serialize::read_checkpoint(last).info.step == 2);
  CHECK(serialize::read_checkpoint(prev).info.step == 1);
  for (const auto& e : fs::directory_iterator(dir.path))  // no temporary file left behind
    CHECK(e.path().extension() == ".safetensors");

  info.metadata["step"] = "7";
  const std::string msg = error_of([&] { serialize::save_checkpoint(last, a.model, &a.opt, a.rngs(), info); });
  CHECK(msg.find("'step' is reserved") != std::string::npos);
  CHECK(serialize::read_checkpoint(last).info.step == 2);  // the refused save wrote nothing
}

TEST_CASE("a flipped bit in a checkpoint's weights, buffers or optimiser state is found and named") {
  TempDir dir;
  Run saved;
  saved.steps(1);
  const std::string good = dir / "good.safetensors";
  serialize::save_checkpoint(good, saved.model, &saved.opt, saved.rngs(), some_info());
  const serialize::Checkpoint ck = serialize::read_checkpoint(good);  // verified: no ChecksumError
  CHECK(ck.info.metadata == some_info().metadata);                    // the checksum keys are not the caller's

  std::vector<unsigned char> bytes(fs::file_size(good));
  std::FILE* f = std::fopen(good.c_str(), "rb");
  REQUIRE(std::fread(bytes.data(), 1, bytes.size(), f) == bytes.size());
  std::fclose(f);
  uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | bytes[static_cast<size_t>(i)];
  const size_t data_start = 8 + header, data_len = bytes.size() - data_start;

  Run target(tiny_config(), 42);
  const nn::NamedTensors before = snapshot(target.model.state_dict());
  std::set<std::string> named;
  const std::string bad = dir / "bad.safetensors";
  for (size_t k = 0; k < 50; ++k) {
    std::vector<unsigned char> d = bytes;
    d[data_start + k * (data_len - 1) / 49] ^= static_cast<unsigned char>(0x80u >> (k % 8));
    std::FILE* o = std::fopen(bad.c_str(), "wb");
    std::fwrite(d.data(), 1, d.size(), o);
    std::fclose(o);
    try {
      serialize::read_checkpoint(bad);
      FAIL_CHECK("flip ", k, " was not detected");
    } catch (const safetensors::ChecksumError& e) {
      CHECK(std::string(e.what()).find(bad + ": damaged") != std::string::npos);
      REQUIRE(e.tensors.size() == 1);
      named.insert(e.tensors[0]);
    }
    if (k % 10 == 0)  // a state_dict load reads (and verifies) the whole file too, and changes nothing
      CHECK_THROWS_AS(serialize::load_state_dict(target.model, bad, /*strict=*/false), safetensors::ChecksumError);
  }
  CHECK(same_state(target.model.state_dict(), before));
  auto any = [&](const std::string& part) {
    return std::any_of(named.begin(), named.end(), [&](const std::string& n) { return n.find(part) != n.npos; });
  };
  CHECK(any("optimizer.exp_avg"));  // optimiser moments
  CHECK(any(".weight"));            // weights
  MESSAGE(named.size(), " distinct tensors named by 50 flips");
}
