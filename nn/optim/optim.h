// Optimisers with PyTorch's update formulas (torch.optim.SGD and torch.optim.AdamW), a warm-up +
// cosine learning-rate schedule, and gradient clipping by global norm.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "maxgrad/nn/module.h"
#include "maxgrad/nn/options.h"

namespace mg::optim {

using nn::NamedTensors;

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params, double lr) : params_(std::move(params)), lr(lr) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;  // parameters without a gradient are skipped, as in PyTorch
  void zero_grad();
  // "SGD", "AdamW": checkpoints record it, so a state is never loaded into the wrong kind of optimiser.
  virtual std::string name() const = 0;
  // State as named tensors ("exp_avg.3", ...: the number is the parameter's index) plus the step
  // count, for checkpoints. The tensors are the live ones: clone them to keep a snapshot.
  virtual NamedTensors state() const = 0;
  // Strict: a missing, unknown or mis-shaped entry throws naming it, and nothing is changed.
  virtual void load_state(const NamedTensors& s) = 0;
  const std::vector<Tensor>& params() const { return params_; }

 protected:
  std::vector<Tensor> params_;

 public:
  double lr;
};

// SGD's hyper-parameters, named as torch.optim.SGD's: SGDOptions(0.1).momentum(0.9).weight_decay(5e-4).
// Only lr is positional: torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov)
// ported argument by argument cannot swap dampening and weight decay without a word.
struct SGDOptions {
  explicit SGDOptions(double lr) : lr_(lr) {}
  MG_ARG(double, lr, 0);
  MG_ARG(double, momentum, 0);
  MG_ARG(double, dampening, 0);
  MG_ARG(double, weight_decay, 0);
  MG_ARG(bool, nesterov, false);
};

// AdamW's, as torch.optim.AdamW's (same defaults): AdamWOptions(2e-3).weight_decay(0.05).
struct AdamWOptions {
  using Betas = std::pair<double, double>;
  explicit AdamWOptions(double lr = 1e-3) : lr_(lr) {}
  MG_ARG(double, lr, 1e-3);
  MG_ARG(Betas, betas, (Betas{0.9, 0.999}));
  MG_ARG(double, eps, 1e-8);
  MG_ARG(double, weight_decay, 1e-2);
};

// PyTorch's SGD: g = grad + wd * p; b = mu * b + (1 - dampening) * g (b = g at the first step);
// nesterov: g = g + mu * b, else g = b; p -= lr * g.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  SGD(std::vector<Tensor> params, double lr) : SGD(std::move(params), SGDOptions(lr)) {}
  void step() override;
  std::string name() const override { return "SGD"; }
  NamedTensors state() const override;
  void load_state(const NamedTensors& s) override;
  double momentum, weight_decay, dampening;
  bool nesterov;

 private:
  std::vector<Tensor> buf_;  // undefined until the first step
};

// PyTorch's AdamW (decoupled weight decay): p *= 1 - lr * wd; m = b1 m + (1-b1) g;
// v = b2 v + (1-b2) g^2; p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps).
class AdamW : public Optimizer {
 public:
  explicit AdamW(std::vector<Tensor> params, const AdamWOptions& options = AdamWOptions());
  AdamW(std::vector<Tensor> params, double lr) : AdamW(std::move(params), AdamWOptions(lr)) {}
  void step() override;
  std::string name() const override { return "AdamW"; }
  NamedTensors state() const override;
  void load_state(const NamedTensors& s) override;
  double beta1, beta2, eps, weight_decay;
  int64_t step_count() const { return step_; }

 private:
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
  int64_t step_ = 0;
};

// Linear warm-up from base_lr / warmup_steps to base_lr over warmup_steps, then cosine to 0 at
// total_steps (torch_cifar_ref.py's schedule, per step). step counts from 0.
double warmup_cosine_lr(double base_lr, int64_t step, int64_t warmup_steps, int64_t total_steps);

// Scales all gradients so that their global L2 norm is at most max_norm; returns the norm before
// clipping (torch.nn.utils.clip_grad_norm_).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace mg::optim
