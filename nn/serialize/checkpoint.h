// Training checkpoints: everything a run needs to go on as if it had never stopped, in ONE
// safetensors file, so a checkpoint is copied, inspected (with any safetensors reader) and
// replaced as a unit.
//
//   tensors   NAME                  the model's state_dict under torchvision's names, unchanged, so
//                                   PyTorch can load_state_dict(..., strict=False) the file directly
//             optimizer.NAME        Optimizer::state() ("optimizer.exp_avg.3", "optimizer.step")
//             rng.NAME              a Generator's 4 state words, as int64 ("rng.drop_path")
//             extra.NAME            the caller's own tensors (running metrics, history, ...)
//   metadata  maxgrad_checkpoint    format version, "1"
//             optimizer             Optimizer::name(), or "" for weights only
//             epoch, batch, step    the schedule position (see CheckpointInfo)
//             data_seed             the seed the data order and augmentation are drawn from
//             anything else         the caller's strings ("config", "recipe", ...)
//
//   serialize::save_checkpoint(dir + "/last.safetensors", model, &opt, {{"drop_path", model.drop_gen.get()}}, info);
//   serialize::Checkpoint ck = serialize::read_checkpoint(dir + "/last.safetensors");   // format checks only
//   serialize::restore_checkpoint(ck, model, &opt, {{"drop_path", model.drop_gen.get()}});
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "maxgrad/core/generator.h"
#include "maxgrad/nn/module.h"
#include "maxgrad/nn/optim/optim.h"

namespace mg::serialize {

using nn::Module;
using nn::NamedTensors;
using optim::Optimizer;

// What a checkpoint holds besides the model's, optimiser's and generators' tensors.
struct CheckpointInfo {
  int64_t epoch = 0;  // the epoch that runs next, counting from 0
  int64_t batch = 0;  // batches of that epoch already done (0 at an epoch boundary)
  int64_t step = 0;   // optimiser steps done in all: the learning-rate schedule's position
  uint64_t data_seed = 0;
  std::map<std::string, std::string> metadata;  // the caller's strings; reserved keys are refused
  NamedTensors extra;                           // the caller's tensors, stored as "extra.NAME"
};

struct Checkpoint {
  std::string path;  // where it was read from, for messages
  CheckpointInfo info;
  std::string optimizer_name;
  NamedTensors model, optimizer;
  std::map<std::string, std::vector<uint64_t>> rngs;
};

using GeneratorRefs = std::vector<std::pair<std::string, Generator*>>;

// Writes atomically (serialize::save_tensors: temporary file, fsync, rename), so `path` holds either the
// previous checkpoint or the complete new one at every instant, a crash included. With a
// non-empty prev_path, the checkpoint being replaced is first kept there (hard link, or a copy).
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* opt, const GeneratorRefs& rngs,
                     const CheckpointInfo& info, const std::string& prev_path = "");

// Reads and checks the file's own consistency (format version, position, names); throws mg::Error
// naming the file and what is wrong. Nothing is applied to any object.
Checkpoint read_checkpoint(const std::string& path);

// Checks the checkpoint against the model (strict state_dict), the optimiser (its kind and state)
// and the generators (exactly the names given), and only when everything fits changes them. On
// error nothing has been changed and the message names the file and every problem found.
// opt is null only for a checkpoint saved without an optimiser.
void restore_checkpoint(const Checkpoint& ck, Module& model, Optimizer* opt, const GeneratorRefs& rngs);

// The model's weights alone (inference): strict, changing nothing on error.
void restore_weights(const Checkpoint& ck, Module& model);

}  // namespace mg::serialize
