// Tensors <-> safetensors files (nn/serialize/safetensors.h does the format; this maps it to Tensors).
#pragma once
#include <map>
#include <string>

#include "maxgrad/nn/module.h"
#include "maxgrad/nn/serialize/safetensors.h"

namespace mg::serialize {

using nn::Module;
using nn::NamedTensors;

// F32, F64 and I64 load as themselves; F16 and BF16 are widened to float32.
Tensor tensor_from_entry(const safetensors::Entry& e);
safetensors::Entry entry_from_tensor(const std::string& name, const Tensor& t);

NamedTensors load_tensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);
// Written atomically (temporary file, flush, rename): a crash never leaves a half-written file.
void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata = {});

// A module's state_dict to / from a file. Loading is strict by default and changes nothing on error.
void save_state_dict(const Module& m, const std::string& path);
void load_state_dict(Module& m, const std::string& path, bool strict = true);

}  // namespace mg::serialize
