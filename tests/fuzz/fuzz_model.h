// The model, optimiser and generator that fuzz_checkpoint restores into and make_corpus saves from:
// a MaxViT small enough to build once and compare in microseconds, with every kind of state a real
// checkpoint holds (float parameters, BatchNorm buffers, int64 num_batches_tracked and
// relative_position_index, AdamW moments, a drop-path generator).
#pragma once
#include "maxgrad/models/maxvit.h"
#include "maxgrad/nn/serialize/checkpoint.h"

namespace mg::fuzz {

inline models::MaxVitConfig tiny_maxvit() {
  models::MaxVitConfig c;
  c.input_h = c.input_w = 8;
  c.stem_channels = 4;
  c.block_channels = {8};
  c.block_layers = {1};
  c.head_dim = 4;
  c.partition_size = 2;
  c.num_classes = 3;
  c.stochastic_depth = 0.5;
  return c;
}

struct TinyRun {
  models::MaxVit model{tiny_maxvit(), 1};
  optim::AdamW opt{model.parameters(), optim::AdamWOptions(1e-2).weight_decay(0.05)};
  serialize::GeneratorRefs rngs() { return {{"drop_path", model.drop_gen.get()}}; }
};

}  // namespace mg::fuzz
