// Layers with torch.nn's names, arguments and parameter names: those MaxViT needs and the common
// ones a small network is built from. Layers with more than a few hyper-parameters take an options
// object (nn/options.h), as in libtorch.
#pragma once
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "maxgrad/core/factory.h"
#include "maxgrad/nn/module.h"
#include "maxgrad/nn/options.h"

namespace mg::nn {

// LinearOptions(in_features, out_features).bias(false)
struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  MG_ARG(int64_t, in_features, 0);
  MG_ARG(int64_t, out_features, 0);
  MG_ARG(bool, bias, true);
};

// y = x W^T + b.  weight (out, in), bias (out). Default init as torch.nn.Linear: U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(const LinearOptions& options, Generator& gen);
  // torch.nn.Linear(in_features, out_features, bias=True)'s order
  Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen)
      : Linear(LinearOptions(in_features, out_features).bias(bias), gen) {}
  Tensor forward(const Tensor& x) override { return linear(x, weight, bias); }
  Tensor weight, bias;
};

// Conv2dOptions(in_channels, out_channels, kernel_size).stride(2).padding(1).groups(g).bias(false)
struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  MG_ARG(int64_t, in_channels, 0);
  MG_ARG(int64_t, out_channels, 0);
  MG_ARG(int64_t, kernel_size, 0);
  MG_ARG(int64_t, stride, 1);
  MG_ARG(int64_t, padding, 0);
  MG_ARG(int64_t, groups, 1);
  MG_ARG(bool, bias, true);
};

// weight (out, in/groups, k, k), bias (out). Default init as torch.nn.Conv2d.
class Conv2d : public Module {
 public:
  Conv2d(const Conv2dOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) override { return conv2d(x, weight, bias, stride, padding, groups); }
  Tensor weight, bias;
  int64_t stride, padding, groups;
};

// LayerNorm over the last dim; weight 1, bias 0.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t features, double eps = 1e-5);
  Tensor forward(const Tensor& x) override { return layer_norm(x, weight, bias, eps); }
  Tensor weight, bias;
  double eps;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
};
class GELU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return gelu(x); }
};
class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return silu(x); }
};
class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
};
class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return tanh(x); }
};
class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};
class Flatten : public Module {  // torch.nn.Flatten(): dims 1..-1
 public:
  Tensor forward(const Tensor& x) override { return x.flatten(1); }
};

// AvgPool2dOptions(kernel_size).stride(2).padding(1).count_include_pad(false); stride defaults to
// kernel_size, as torch.nn.AvgPool2d's.
struct AvgPool2dOptions {
  explicit AvgPool2dOptions(int64_t kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}
  MG_ARG(int64_t, kernel_size, 0);
  MG_ARG(int64_t, stride, 0);
  MG_ARG(int64_t, padding, 0);
  MG_ARG(bool, count_include_pad, true);
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const AvgPool2dOptions& o)
      : kernel(o.kernel_size()), stride(o.stride()), padding(o.padding()), count_include_pad(o.count_include_pad()) {}
  // torch.nn.AvgPool2d(kernel_size, stride, padding)'s order
  AvgPool2d(int64_t kernel, int64_t stride, int64_t padding = 0)
      : AvgPool2d(AvgPool2dOptions(kernel).stride(stride).padding(padding)) {}
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, kernel, stride, padding, count_include_pad); }
  int64_t kernel, stride, padding;
  bool count_include_pad;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(int64_t output_size) : output_size(output_size) {}
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, output_size); }
  int64_t output_size;
};

// Random layers draw from a Generator the owner supplies (and can seed, save and restore).
class Dropout : public Module {
 public:
  Dropout(double p, std::shared_ptr<Generator> gen) : p(p), gen(std::move(gen)) {}
  Tensor forward(const Tensor& x) override { return p == 0 ? x : dropout(x, p, is_training(), *gen); }
  double p;
  std::shared_ptr<Generator> gen;
};

// torchvision.ops.StochasticDepth(p, mode="row"): drops whole samples of a residual branch.
class StochasticDepth : public Module {
 public:
  StochasticDepth(double p, std::shared_ptr<Generator> gen) : p(p), gen(std::move(gen)) {}
  Tensor forward(const Tensor& x) override { return p == 0 ? x : drop_path(x, p, is_training(), *gen); }
  // residual + forward(branch), as one op (add_drop_path): how the residual blocks use it.
  Tensor add_to(const Tensor& residual, const Tensor& branch) {
    return add_drop_path(residual, branch, p, is_training(), *gen);
  }
  double p;
  std::shared_ptr<Generator> gen;
};

// Children named "0", "1", ... (or given names), applied in order.
class Sequential : public Module {
 public:
  Sequential() = default;
  // Sequential({std::make_shared<Linear>(2, 16, true, gen), std::make_shared<ReLU>(), ...}): named 0, 1, ...
  Sequential(std::initializer_list<ModulePtr> layers) {
    for (const ModulePtr& m : layers) push_back(m);
  }
  void push_back(ModulePtr m) { add(std::to_string(layers_.size()), std::move(m)); }
  void add(const std::string& name, ModulePtr m) { layers_.push_back(register_module(name, std::move(m))); }
  Tensor forward(const Tensor& x) override;
  const ModulePtr& operator[](size_t i) const { return layers_.at(i); }
  size_t size() const { return layers_.size(); }

 private:
  std::vector<ModulePtr> layers_;
};

// torchvision.ops.SqueezeExcitation: x * sigmoid(fc2(act(fc1(avgpool(x))))), fc1/fc2 1x1 convs.
class SqueezeExcitation : public Module {
 public:
  SqueezeExcitation(int64_t channels, int64_t squeeze_channels, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Conv2d> fc1, fc2;
};

}  // namespace mg::nn
