// What a train_cifar checkpoint says about itself, for the programs that read one (predict,
// bn_inspect): the flags it was trained with (its "config" metadata) and the input normalisation.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "examples/common/train_flags.h"
#include "maxgrad/data/transforms.h"
#include "maxgrad/nn/serialize/checkpoint.h"

namespace mg::cli {

// The checkpoint's train_cifar flags (defaults when it has no "config"), with the model flags of
// `args` (this program's command line) parsed over them: --threads, --dtype, or a shape that then
// fails to load. add_own_flags declares the program's other flags, so that parsing `args` accepts
// them. Throws UsageError for a config or a command line that does not parse.
TrainFlags checkpoint_flags(const serialize::Checkpoint& ck, const std::vector<std::string>& args,
                            const std::string& program, const std::function<void(Flags&)>& add_own_flags);

// The largest input side a checkpoint's configuration may ask for (maxvit_t's is 224): with
// maxvit_t's 64-channel stem, one activation of a 1024x1024 input is 256 MB.
constexpr int64_t kMaxCheckpointInputSide = 1024;

// Throws mg::Error naming the file unless the model `cfg` describes has exactly the checkpoint's
// stages, layers per stage, stem and stage widths, attention heads, partition size and classes, as
// its tensors' names and shapes show, and an input of at most kMaxCheckpointInputSide a side. The
// model is built after this: a configuration asking for 100,000 layers or a 65536x65536 input is
// refused before it allocates anything, and the model built is no larger than the file's tensors.
void check_config_fits(const models::MaxVitConfig& cfg, const serialize::Checkpoint& ck);

// The normalisation the checkpoint's model was trained with (its normalize_mean/std metadata);
// CIFAR-10's when it has none. Throws mg::Error naming the file when they are malformed.
data::Normalization checkpoint_normalization(const serialize::Checkpoint& ck);

}  // namespace mg::cli
