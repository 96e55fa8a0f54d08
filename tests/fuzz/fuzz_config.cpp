// Fuzzes what a checkpoint says about its run (examples/common/checkpoint_config.h), the strings
// predict and bn_inspect read before building a model: its 'config' flag string, parsed with the
// model and recipe flags alone, the model it describes checked against the checkpoint's tensors
// (check_config_fits; a tiny MaxViT's here), and its normalisation numbers.
//   the input: NUL-separated 'config', normalize_mean, normalize_std
// A bad string must end in cli::UsageError or mg::Error (exit 2 in the programs); a configuration
// that passes check_config_fits must build a model no larger than the checkpoint's, which is built
// here to show it. Anything else is a finding.
#include <cstdint>

#include "examples/common/checkpoint_config.h"
#include "fuzz_common.h"
#include "fuzz_model.h"

using namespace mg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::TinyRun tiny;
  const std::vector<std::string> parts = fuzz::split_nul(data, size);
  serialize::Checkpoint ck;
  ck.path = "fuzz/last.safetensors";
  ck.model = tiny.model.state_dict();
  if (!parts.empty()) ck.info.metadata["config"] = parts[0];
  if (parts.size() > 1) ck.info.metadata["normalize_mean"] = parts[1];
  if (parts.size() > 2) ck.info.metadata["normalize_std"] = parts[2];
  try {
    const cli::TrainFlags flags = cli::checkpoint_flags(ck, {}, "predict", [](cli::Flags&) {});
    const models::MaxVitConfig cfg = flags.model.config(0.0);
    cli::check_config_fits(cfg, ck);
    models::MaxVit model(cfg, 0);
    MG_FUZZ_CHECK(model.num_parameters() == tiny.model.num_parameters());
  } catch (const cli::UsageError&) {
  } catch (const Error&) {
  }
  try {
    const data::Normalization n = cli::checkpoint_normalization(ck);
    for (float s : n.stddev) MG_FUZZ_CHECK(s > 0);
  } catch (const Error&) {
  }
  return 0;
}
