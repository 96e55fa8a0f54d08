// Fuzzes training checkpoints (nn/serialize/checkpoint.h) as train_cifar --resume and predict use them:
// read_checkpoint(path) (safetensors reading plus the checkpoint's own checks), then
// restore_checkpoint into a tiny MaxViT with AdamW and a drop-path generator. The promise checked:
// a refused checkpoint changes nothing (every state tensor and the generator stay bitwise the same).
#include <cstdint>
#include <cstring>

#include "fuzz_common.h"
#include "fuzz_model.h"
#include "maxgrad/nn/serialize/safetensors.h"

using namespace mg;

namespace {

struct Snapshot {
  std::vector<std::vector<unsigned char>> bytes;
  std::vector<uint64_t> rng;
};

std::vector<unsigned char> raw(const Tensor& t) {
  Tensor c = t.detach().contiguous();
  const size_t n = static_cast<size_t>(c.numel()) * itemsize(c.dtype());
  const auto* p = static_cast<const unsigned char*>(
      MG_DISPATCH_ALL(c.dtype(), "raw", [&] { return static_cast<const void*>(c.data<scalar_t>()); }));
  return std::vector<unsigned char>(p, p + n);
}

nn::NamedTensors cloned(const nn::NamedTensors& ts) {
  nn::NamedTensors out;
  for (const auto& [n, t] : ts) out.emplace_back(n, t.detach().clone());
  return out;
}

Snapshot snapshot(fuzz::TinyRun& run) {
  Snapshot s;
  for (const auto& [n, t] : run.model.state_dict()) s.bytes.push_back(raw(t));
  for (const auto& [n, t] : run.opt.state()) s.bytes.push_back(raw(t));
  s.rng = run.model.drop_gen->state();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::TinyRun run;
  static const Snapshot initial = snapshot(run);
  static const nn::NamedTensors initial_model = cloned(run.model.state_dict());
  static const nn::NamedTensors initial_opt = cloned(run.opt.state());  // state() aliases the live moments

  const std::string path = fuzz::write_scratch("last.safetensors", data, size);
  serialize::Checkpoint ck;
  try {
    ck = serialize::read_checkpoint(path);
  } catch (const Error&) {
    return 0;
  } catch (const safetensors::ChecksumError&) {  // damaged since written: refused before anything is touched
    return 0;
  }
  bool restored = false;
  try {
    serialize::restore_checkpoint(ck, run.model, &run.opt, run.rngs());
    restored = true;
  } catch (const Error&) {
  }
  if (!restored) {
    const Snapshot now = snapshot(run);
    MG_FUZZ_CHECK(now.bytes == initial.bytes && now.rng == initial.rng);  // "nothing has been changed"
    return 0;
  }
  // Accepted: put the initial state back, so every input starts from the same objects.
  run.model.load_state_dict(initial_model);
  run.opt.load_state(initial_opt);
  run.model.drop_gen->set_state(initial.rng);
  return 0;
}
