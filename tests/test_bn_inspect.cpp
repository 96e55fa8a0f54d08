// The bn_inspect program (examples/tools/bn_inspect.cpp), run as a user runs it (from MAXGRAD_BIN),
// on checkpoints whose verdict is known by construction: a fresh model (running statistics never
// updated: lagging), a short run at momentum 0.01 (31 updates leave 0.99^31 = 73% of the initial
// values: lagging), the same run at 0.99 (each update keeps 99% of the last batch: noisy), and a
// longer run at 0.1 (an average over about the last 20 batches of 124, the weights settling as the
// learning rate decays: healthy). Then the bad inputs: exit status 2, a message naming the problem,
// nothing written.
//
// The model is test_train's tiny MaxViT on the synthetic set, so each run takes about a second.
// Measured on an AVX-512 build, 2 threads: worst-layer ratio 65 at 0.01, 1.6 at 0.99 (its running
// deviation at most 1.06 x the largest batch's, against 2 for lagging), 0.35 at 0.1 (against 0.5).
#include <doctest/doctest.h>
#include <sys/wait.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "examples/common/train_flags.h"
#include "maxgrad/models/maxvit.h"
#include "maxgrad/nn/layers.h"
#include "maxgrad/nn/serialize/checkpoint.h"
#include "run_program.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using mg::testing::TempDir;

namespace {

using mg::testing::read_text;
using mg::testing::Result;

// Runs a program of the build in `cwd` (see tests/run_program.h); its output goes to files in `logs`,
// outside cwd, so that cwd shows whatever the program itself wrote.
Result run(const std::string& program, const std::vector<std::string>& args, const TempDir& cwd, const TempDir& logs) {
  return mg::testing::run_command(mg::testing::program_command(program, args), cwd.path.string(), logs / "run");
}

const std::vector<std::string> kTinyModel = {"--block-channels", "16,32,64", "--block-layers",   "1,1,1",
                                             "--stem-channels",  "16",       "--head-dim",       "16",
                                             "--stem-stride",    "2",        "--partition-size", "2"};

std::vector<std::string> tiny(std::vector<std::string> more) {
  std::vector<std::string> a = kTinyModel;
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

// The last line of stdout, the JSON object: {"layers": N, "verdict": "...", "worst_layer": "NAME"}
std::string last_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s.substr(s.rfind('\n') + 1);
}

// Trains the tiny model on the synthetic set (1000 images, batch 32, 31 steps an epoch) into
// dir/name and returns the checkpoint's path.
std::string train(const TempDir& dir, const TempDir& logs, const std::string& name, const std::string& momentum,
                  int epochs) {
  const Result r = run("train_cifar",
                       tiny({"--bn-momentum", momentum, "--synthetic", "--subset", "100", "--eval-subset", "10",
                             "--epochs", std::to_string(epochs), "--batch", "32", "--out", name}),
                       dir, logs);
  REQUIRE_MESSAGE(r.status == 0, r.err);
  return dir / (name + "/last.safetensors");
}

// bn_inspect's verdict, checking the JSON line's shape and that the table has a row per layer.
std::string verdict_of(const std::string& checkpoint, const TempDir& dir, const TempDir& logs,
                       std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--checkpoint", checkpoint, "--synthetic"};
  args.insert(args.end(), more.begin(), more.end());
  const Result r = run("bn_inspect", args, dir, logs);
  REQUIRE_MESSAGE(r.status == 0, r.err);
  MESSAGE(r.out);
  const std::string json = last_line(r.out);
  // 10 BatchNorm layers: the stem's, and pre_norm, conv_a.1, conv_b.1 of each stage's MBConv
  CHECK(json.rfind("{\"layers\": 10, \"verdict\": \"", 0) == 0);
  const size_t v = json.find("\"verdict\": \"") + 12;
  const std::string verdict = json.substr(v, json.find('"', v) - v);
  const size_t w = json.find("\"worst_layer\": \"") + 16;
  const std::string worst = json.substr(w, json.find('"', w) - w);
  CHECK(r.out.find("\n" + worst + " ") != std::string::npos);  // a row of the table
  CHECK(r.out.find("\nstem.0.1 ") != std::string::npos);
  return verdict;
}

// The files a folder holds, for "nothing written".
std::vector<std::string> listing(const TempDir& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir.path)) names.push_back(e.path().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("bn_inspect: a fresh model's running statistics are the initial 0 and 1: lagging") {
  TempDir dir, logs;
  // What train_cifar would save before its first step: the tiny model as built, with its config.
  mg::cli::TrainFlags tf;
  mg::cli::Flags flags("test", "");
  tf.add_to(flags);
  flags.parse(tiny({"--bn-momentum", "0.01", "--batch", "32"}));
  mg::models::MaxVit model(tf.model_config(), 0);
  mg::serialize::CheckpointInfo info;
  info.metadata = {{"config", mg::cli::join(tf.canonical_args(), " ")}, {"data", "synthetic"}};
  mg::serialize::save_checkpoint(dir / "fresh.safetensors", model, nullptr, {}, info);
  CHECK(verdict_of(dir / "fresh.safetensors", dir, logs) == "lagging");
}

TEST_CASE("bn_inspect: 31 steps at momentum 0.01 lag, 0.99 follows the last batch, 124 at 0.1 are healthy") {
  TempDir dir, logs;
  CHECK(verdict_of(train(dir, logs, "m001", "0.01", 1), dir, logs) == "lagging");
  CHECK(verdict_of(train(dir, logs, "m099", "0.99", 1), dir, logs) == "noisy");
  const std::string healthy = train(dir, logs, "m01", "0.1", 4);
  CHECK(verdict_of(healthy, dir, logs, {"--batches", "64"}) == "healthy");

  // The program writes nothing, and the same command prints the same numbers.
  const auto before = listing(dir);
  const Result a = run("bn_inspect", {"--checkpoint", healthy, "--synthetic"}, dir, logs);
  const Result b = run("bn_inspect", {"--checkpoint", healthy, "--synthetic"}, dir, logs);
  REQUIRE(a.status == 0);
  CHECK(a.out == b.out);
  CHECK(listing(dir) == before);
}

TEST_CASE("bn_inspect: bad inputs exit 2 with a message naming the problem, writing nothing") {
  TempDir dir, logs;
  const std::string ck = train(dir, logs, "run", "0.1", 1);
  // A checkpoint of a model without BatchNorm.
  mg::Generator gen(0);
  mg::nn::Linear linear(mg::nn::LinearOptions(4, 2), gen);
  mg::serialize::save_checkpoint(dir / "linear.safetensors", linear, nullptr, {}, {});
  // A data folder of 16x16 images where the model takes 32x32, and an empty one.
  for (const char* split : {"train", "test"})
    for (const char* cls : {"a", "b"}) {
      fs::create_directories(dir / (std::string("small/") + split + "/" + cls));
      std::vector<unsigned char> px(16 * 16 * 3, 100);
      REQUIRE(stbi_write_png((dir / (std::string("small/") + split + "/" + cls + "/0.png")).c_str(), 16, 16, 3,
                             px.data(), 16 * 3));
    }
  fs::create_directories(dir / "empty");
  std::ofstream(dir / "damaged.safetensors") << "not a safetensors file";
  // A real checkpoint with 64 bytes overwritten in the middle: its checksums name the damage.
  fs::copy_file(ck, dir / "flipped.safetensors");
  {
    std::fstream f(dir / "flipped.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(dir / "flipped.safetensors") / 2));
    const std::string ff(64, '\xff');
    f.write(ff.data(), 64);
  }

  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--checkpoint", dir / "linear.safetensors", "--synthetic"}, "has no BatchNorm layer"},
      {{"--checkpoint", ck, "--synthetic", "--block-channels", "32,64,128"}, "the model flags do not describe"},
      {{"--checkpoint", ck, "--synthetic", "--head-dim", "24"}, "with these model flags"},
      {{"--checkpoint", ck, "--data", dir / "small"}, "16x16"},
      {{"--checkpoint", ck, "--data", dir / "empty"}, "no CIFAR-10 there"},
      {{"--checkpoint", dir / "damaged.safetensors", "--synthetic"}, "damaged.safetensors"},
      {{"--checkpoint", dir / "flipped.safetensors", "--synthetic"}, "does not match the checksums"},
      {{"--checkpoint", dir / "missing.safetensors", "--synthetic"}, "missing.safetensors"},
      {{"--synthetic"}, "--checkpoint is required"},
  };
  const auto before = listing(dir);
  for (const Case& c : cases) {
    CAPTURE(c.says);
    const Result r = run("bn_inspect", c.args, dir, logs);
    CHECK(r.status == 2);
    CHECK_MESSAGE(r.err.find(c.says) != std::string::npos, r.err);
    CHECK(r.out.empty());
  }
  CHECK(listing(dir) == before);
}
