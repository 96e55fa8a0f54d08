// Fuzzes the command-line parser (examples/common/flags.h) with the flag sets of the real programs.
//   byte 0 % 3 == 0   step_dump's flags, then the model configuration they describe
//              == 1   train_cifar's flags, then its recipe, model configuration and canonical_args()
//              == 2   train_cifar --resume: the first string is a checkpoint's saved 'config' (a file's
//                     contents, so untrusted), the rest the command line (merge_for_resume)
//   the rest        NUL-separated arguments
// A bad command line must end in cli::UsageError (exit 2 in the programs) and nothing else: any other
// exception escapes the target and is a finding.
#include <cstdint>

#include "examples/common/step_flags.h"
#include "examples/common/train_flags.h"
#include "fuzz_common.h"

using namespace mg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<std::string> args = fuzz::split_nul(data + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0: {
        cli::StepFlags sf;
        cli::Flags flags("step_dump", cli::StepFlags::kSynopsis);
        sf.add_to(flags);
        flags.parse(args);
        sf.config();
        sf.options();
        break;
      }
      case 1: {
        cli::TrainFlags tf;
        cli::Flags flags("train_cifar", cli::TrainFlags::kSynopsis);
        tf.add_to(flags);
        flags.parse(args);
        tf.recipe();
        tf.model_config();
        // canonical_args must read back through the parser as the same configuration.
        const std::vector<std::string> canon = tf.canonical_args();
        cli::TrainFlags again;
        cli::Flags f2("train_cifar", "");
        again.add_to(f2);
        f2.parse(canon);
        MG_FUZZ_CHECK(again.canonical_args() == canon);
        break;
      }
      default: {
        const std::string saved = args.empty() ? "" : args[0];
        if (!args.empty()) args.erase(args.begin());
        cli::merge_for_resume(saved, args, "fuzz/last.safetensors");
        break;
      }
    }
  } catch (const cli::UsageError&) {
  }
  return 0;
}
