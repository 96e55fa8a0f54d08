// A checkpoint's saved configuration (its "config" metadata, read back by train_cifar --resume)
// is somebody else's file: it may set the model and the recipe, and nothing else. A config that
// names where the run writes (--out, --dump-step), what it reads (--data), or how it runs
// (--threads, --max-steps, --sync-bn, --nan-at-step, --resume) is refused with an error naming the
// checkpoint, before anything is done (docs/reliability.md).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "examples/common/train_flags.h"

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
