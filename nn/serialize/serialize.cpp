#include "maxgrad/nn/serialize/serialize.h"

#include <cstring>

namespace mg::serialize {

namespace st = mg::safetensors;

namespace {
// `n` bytes into t's storage: exactly its size (an Entry built in code need not have been checked by
// the reader), and no memcpy at all for a zero-size tensor, whose pointers may be null.
Tensor filled(Tensor t, const void* src, size_t n, const st::Entry& e) {
  const size_t want = static_cast<size_t>(t.numel()) * itemsize(t.dtype());
  MG_CHECK(n == want, "tensor_from_entry", "entry '", e.name, "' holds ", n, " bytes, its shape ", shape_str(e.shape),
           " needs ", want);
  if (n) std::memcpy(t.impl().storage->data(), src, n);  // fresh from Tensor::empty: contiguous, offset 0
  return t;
}
}  // namespace

Tensor tensor_from_entry(const st::Entry& e) {
  switch (e.dtype) {
    case st::DType::F32:
    case st::DType::F16:
    case st::DType::BF16: {
      std::vector<float> v = st::to_float32(e);
      return filled(Tensor::empty(e.shape, DType::Float32), v.data(), v.size() * sizeof(float), e);
    }
    case st::DType::F64: return filled(Tensor::empty(e.shape, DType::Float64), e.bytes.data(), e.bytes.size(), e);
    case st::DType::I64: return filled(Tensor::empty(e.shape, DType::Int64), e.bytes.data(), e.bytes.size(), e);
    default:
      throw Error(cat("safetensors: tensor '", e.name, "' has dtype ", st::name(e.dtype),
                      ", which maxgrad does not load (F32, F64, I64, F16, BF16)"));
  }
}

st::Entry entry_from_tensor(const std::string& name, const Tensor& t_in) {
  Tensor t = t_in.detach().contiguous();
  st::Entry e;
  e.name = name;
  e.shape = t.shape();
  e.dtype = t.dtype() == DType::Float32   ? st::DType::F32
            : t.dtype() == DType::Float64 ? st::DType::F64
                                          : st::DType::I64;
  const size_t n = static_cast<size_t>(t.numel()) * itemsize(t.dtype());
  e.bytes.resize(n);
  if (n) {
    const void* src = MG_DISPATCH_ALL(t.dtype(), "save", [&] { return static_cast<const void*>(t.data<scalar_t>()); });
    std::memcpy(e.bytes.data(), src, n);
  }
  return e;
}

NamedTensors load_tensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  st::File f = st::read(path);
  NamedTensors out;
  for (const st::Entry& e : f.tensors) out.emplace_back(e.name, tensor_from_entry(e));
  if (metadata) *metadata = f.metadata;
  return out;
}

void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata) {
  st::File f;
  for (const auto& [n, t] : tensors) f.tensors.push_back(entry_from_tensor(n, t));
  f.metadata = metadata;
  st::write(path, f);
}

void save_state_dict(const Module& m, const std::string& path) { save_tensors(path, m.state_dict()); }

void load_state_dict(Module& m, const std::string& path, bool strict) {
  NamedTensors t = load_tensors(path);
  try {
    m.load_state_dict(t, strict);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + "\n  (file: " + path + ")");
  }
}

}  // namespace mg::serialize
