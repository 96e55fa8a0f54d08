// What a checkpoint says about its run is somebody else's file (issue 27, docs/reliability.md):
// - its saved configuration ("config", read back by train_cifar --resume, predict and bn_inspect)
//   may set the model and the recipe, and nothing else: a config that names where the run writes
//   (--out, --dump-step), what it reads (--data) or how it runs (--threads, --max-steps, --sync-bn,
//   --nan-at-step, --resume) is refused with an error naming the checkpoint, before anything is done;
// - list flags with an empty item, normalisation numbers that are not whole finite numbers (or a
//   std of 0), and a generator state of all zeros are refused too.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "examples/common/checkpoint_config.h"
#include "examples/common/train_flags.h"
#include "examples/common/train_report.h"
#include "maxgrad/core/error.h"
#include "maxgrad/core/generator.h"
#include "maxgrad/models/maxvit.h"

using namespace mg;

namespace {
std::string refusal(const std::string& saved) {
  try {
    cli::merge_for_resume(saved, {"--resume"}, "runs/x/last.safetensors");
  } catch (const cli::UsageError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("a checkpoint's config may set the model and the recipe") {
  const cli::TrainFlags tf = cli::merge_for_resume(
      "--preset cifar --block-layers 1,1,1 --epochs 3 --lr 0.001 "
      "--batch 64 --bn-momentum 0.1 --precise-bn 0",
      {"--resume", "--out", "runs/x"}, "runs/x/last.safetensors");
  CHECK(tf.recipe().epochs == 3);
  CHECK(tf.recipe().batch == 64);
  CHECK(tf.recipe().precise_bn == 0);
  CHECK(tf.out_dir() == "runs/x");  // from the command line
  CHECK(*tf.model_config().bn.momentum() == 0.1);
}

TEST_CASE("a checkpoint's config cannot set where the run writes or reads, or how it runs") {
  for (const char* flag :
       {"--dump-step /home/user/.ssh/authorized_keys", "--out /etc", "--data /dev/zero", "--threads 1024",
        "--max-steps 1", "--sync-bn", "--nan-at-step 1", "--resume", "--synthetic"}) {
    INFO(flag);
    const std::string msg = refusal(std::string("--preset cifar --epochs 2 ") + flag);
    CHECK(msg.find("runs/x/last.safetensors") != std::string::npos);
    CHECK(msg.find("only model and recipe flags") != std::string::npos);
  }
}

TEST_CASE("a list flag with an empty item is malformed, in a checkpoint's config as on a command line") {
  for (const char* bad : {"--block-layers 1,1,", "--block-layers ,1,1", "--block-channels 16,,32"}) {
    INFO(bad);
    CHECK(refusal(std::string("--preset cifar ") + bad).find("comma-separated list") != std::string::npos);
  }
  CHECK_THROWS_AS(cli::parse_int_list("block-layers", "2,2,"), cli::UsageError);
  CHECK(cli::parse_int_list("block-layers", "2,2,2") == std::vector<int64_t>{2, 2, 2});
}

TEST_CASE("a generator state of all zeros, which would draw only zeros, is refused") {
  Generator g(1);
  CHECK_THROWS_AS(g.set_state({0, 0, 0, 0}), Error);
  const std::vector<uint64_t> s = g.state();
  g.set_state(s);
  CHECK(g.state() == s);
}

TEST_CASE("a checkpoint's normalisation numbers are whole, finite numbers, each std above 0") {
  serialize::Checkpoint ck;
  ck.path = "runs/x/last.safetensors";
  ck.info.metadata["normalize_mean"] = "0.4914,0.4822,0.4465";
  ck.info.metadata["normalize_std"] = "0.2470,0.2435,0.2616";
  CHECK(cli::checkpoint_normalization(ck).stddev[2] == doctest::Approx(0.2616));
  for (const char* bad : {"0.5abc,0.2,0.2", "0,0.2,0.2", "nan,0.2,0.2", "-1,0.2,0.2", ",0.2,0.2"}) {
    INFO(bad);
    ck.info.metadata["normalize_std"] = bad;
    CHECK_THROWS_AS(cli::checkpoint_normalization(ck), Error);
  }
}

TEST_CASE("a checkpoint's configuration must describe the checkpoint's own tensors") {
  models::MaxVitConfig cfg = models::MaxVitConfig::preset("cifar");
  cfg.block_channels = {16, 32, 64}, cfg.block_layers = {1, 2, 1}, cfg.stem_channels = 16, cfg.head_dim = 16;
  cfg.stem_stride = 2, cfg.partition_size = 2;
  models::MaxVit model(cfg, 0);
  serialize::Checkpoint ck;
  ck.path = "runs/x/last.safetensors";
  ck.model = model.state_dict();
  CHECK_NOTHROW(cli::check_config_fits(cfg, ck));
  auto refusal = [&](const models::MaxVitConfig& c) {
    try {
      cli::check_config_fits(c, ck);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  models::MaxVitConfig c = cfg;
  c.block_layers = {100000, 2, 1};
  CHECK(refusal(c).find("100000 layers in stage 0, but the tensors hold 1") != std::string::npos);
  c = cfg, c.block_layers = {1, 2, 1, 1}, c.block_channels = {16, 32, 64, 64};
  CHECK(refusal(c).find("4 stages, but the tensors hold 3") != std::string::npos);
  c = cfg, c.input_h = c.input_w = 65536;
  CHECK(refusal(c).find("an input of 65536x65536, more than the 1024") != std::string::npos);
  c = cfg, c.stem_channels = 4096;
  CHECK(refusal(c).find("a stem of 4096, but stem.0.0.weight has shape [16, 3, 3, 3]") != std::string::npos);
  c = cfg, c.block_channels = {16, 32, 4096};
  CHECK(refusal(c).find("stage width 4096") != std::string::npos);
  c = cfg, c.partition_size = 1;
  CHECK(refusal(c).find("partition size 1") != std::string::npos);
  c = cfg, c.num_classes = 100000;
  CHECK(refusal(c).find("classes: 100000") != std::string::npos);
  CHECK(refusal(c).find("runs/x/last.safetensors") != std::string::npos);
}

TEST_CASE("a checkpoint's training history holds whole epoch and step numbers") {
  std::vector<cli::EpochRecord> records(2);
  records[0].epoch = 1, records[0].step = 390, records[1].epoch = 2, records[1].step = 780;
  const Tensor seconds = cli::history_seconds(records);
  CHECK(cli::history_from(cli::history_tensor(records), seconds).back().step == 780);
  for (double bad : {std::nan(""), -1.0, 1e300, 2.5}) {
    INFO(bad);
    std::vector<double> h = cli::history_tensor(records).to_vector();
    h[17 + 1] = bad;  // row 1's step
    CHECK_THROWS_AS(cli::history_from(Tensor::from_vector(h, {2, 17}, DType::Float64), seconds), Error);
  }
}

TEST_CASE("strings from a checkpoint reach messages escaped and cut short") {
  CHECK(printable("a\x1b[2Jb") == "a\\x1b[2Jb");
  CHECK(printable(std::string(1000, 'x')).size() == 203);
  const std::string r = refusal("--epochs 3 --\x1b[2J" + std::string(100000, 'z'));
  CHECK(r.find('\x1b') == std::string::npos);
  CHECK(r.size() < 2000);
}
