#include "maxgrad/nn/module.h"

#include <set>
#include <sstream>

namespace mg::nn {

void Module::train(bool on) {
  training_ = on;
  on_train(on);
  for (auto& [name, child] : children_) child->train(on);
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  if (t.defined()) {
    t.requires_grad_(true);
    params_.emplace_back(name, t);
  }
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const {
  if (params)
    for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  if (buffers)
    for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, child] : children_) child->collect(prefix + n + ".", params, buffers, out);
}

NamedTensors Module::named_parameters(const std::string& prefix) const {
  NamedTensors out;
  collect(prefix, true, false, out);
  return out;
}

NamedTensors Module::named_buffers(const std::string& prefix) const {
  NamedTensors out;
  collect(prefix, false, true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", true, true, out);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  fn(*this);
  for (auto& [n, child] : children_) child->apply(fn);
}

void Module::zero_grad() {
  for (Tensor& t : parameters()) t.zero_grad();
}

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  NamedTensors mine = state_dict();
  std::map<std::string, Tensor> given;
  std::vector<std::string> duplicate, missing, unexpected, misshaped;
  for (const auto& [n, t] : state)
    if (!given.emplace(n, t).second) duplicate.push_back(n);
  std::set<std::string> known;
  for (const auto& [n, t] : mine) {
    known.insert(n);
    auto it = given.find(n);
    if (it == given.end()) {
      missing.push_back(n);
      continue;
    }
    const Tensor& src = it->second;
    bool int_mismatch = (src.dtype() == DType::Int64) != (t.dtype() == DType::Int64);
    if (src.shape() != t.shape() || int_mismatch)
      misshaped.push_back(n + " (expected " + t.info() + ", got " + src.info() + ")");
  }
  for (const auto& [n, t] : given)
    if (!known.count(n)) unexpected.push_back(n);

  std::ostringstream err;
  // The names come from a file: escaped, cut short, and at most 20 of each kind listed.
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    err << "\n  " << v.size() << " " << what << ":";
    for (size_t i = 0; i < v.size() && i < 20; ++i) err << "\n    " << printable(v[i]);
    if (v.size() > 20) err << "\n    ... and " << v.size() - 20 << " more";
  };
  list("mis-shaped or wrongly typed", misshaped);
  list("duplicated", duplicate);
  if (strict) {
    list("missing", missing);
    list("unexpected", unexpected);
  }
  const std::string problems = err.str();
  if (!problems.empty())
    throw Error("load_state_dict: the state does not fit this model; nothing was loaded:" + problems);

  NoGradGuard no_grad;  // in-place writes into parameters are allowed outside the graph
  for (auto& [n, t] : mine) {
    auto it = given.find(n);
    if (it != given.end()) t.copy_(it->second);
  }
}

void Module::to(DType dtype) {
  for (auto& [n, t] : state_dict()) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) continue;
    // Swap the storage under the same TensorImpl so that every handle to it sees the new dtype.
    Tensor converted = t.detach().to(dtype).contiguous();
    TensorImpl& impl = t.impl();
    impl.storage = converted.impl().storage;
    impl.dtype = dtype;
    impl.strides = converted.strides();
    impl.offset = 0;
    impl.grad.reset();
  }
}

}  // namespace mg::nn
