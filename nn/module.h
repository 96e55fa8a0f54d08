// Module: the libtorch/PyTorch building block. It owns named parameters, buffers and child
// modules, and builds dotted state_dict names from them exactly as PyTorch does
// ("blocks.0.layers.1.layers.MBconv.layers.conv_a.0.weight").
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "maxgrad/core/ops.h"

namespace mg::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Training mode (BatchNorm batch statistics, dropout, drop-path) for this module and its children.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  NamedTensors named_parameters(const std::string& prefix = "") const;
  NamedTensors named_buffers(const std::string& prefix = "") const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  // Parameters then buffers of each module, depth first: PyTorch's state_dict order.
  NamedTensors state_dict() const;
  // Copies values into the existing tensors. Strict: every missing, unexpected and mis-shaped key
  // is reported in one error, and nothing is changed unless everything fits.
  void load_state_dict(const NamedTensors& state, bool strict = true);
  void zero_grad();
  // Converts every floating parameter and buffer to dtype, in place (tensors keep their identity).
  void to(DType dtype);
  int64_t num_parameters() const;
  // Calls fn on this module and every descendant, depth first (like torch's Module.apply).
  void apply(const std::function<void(Module&)>& fn);

 protected:
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <typename M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }
  // Called by train(); layers whose behaviour depends on the mode need nothing more.
  virtual void on_train(bool) {}

 private:
  void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;
  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

using ModulePtr = std::shared_ptr<Module>;

}  // namespace mg::nn
