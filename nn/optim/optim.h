// Optimisers with PyTorch's update formulas (torch.optim.SGD and torch.optim.AdamW), a warm-up +
// cosine learning-rate schedule, and gradient clipping by global norm.
//
// Weight decay can be left out per parameter, as timm's param_groups_weight_decay does with two
// parameter groups (the second with weight_decay 0):
//   optim::AdamW opt(model.parameters(), optim::AdamWOptions(1e-3).weight_decay(0.05),
//                    optim::decay_mask(model.named_parameters()));
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
  // decay_mask: per parameter, whether weight decay applies (empty: to every one).
  Optimizer(std::vector<Tensor> params, double lr, std::vector<bool> decay_mask = {});
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
  // Whether parameter k gets weight decay (decay_mask's entry, true without a mask).
  bool decays(size_t k) const { return decay_mask_.empty() || decay_mask_[k]; }

 protected:
  std::vector<Tensor> params_;
  std::vector<bool> decay_mask_;

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
  SGD(std::vector<Tensor> params, const SGDOptions& options, std::vector<bool> decay_mask = {});
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
  // Parameter k gets weight decay only where decay_mask[k] (see decay_mask below).
  AdamW(std::vector<Tensor> params, const AdamWOptions& options, std::vector<bool> decay_mask);
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

// timm's param_groups_weight_decay rule, one entry per parameter in named_params' order (that of
// Module::parameters()): false (no weight decay) for a parameter with at most 1 dimension (biases,
// norm weights), a name ending in ".bias", or a name ending in one of no_decay_suffixes (MaxViT's
// relative position bias tables by default, which timm's MaxxVit.no_weight_decay also excludes).
std::vector<bool> decay_mask(const NamedTensors& named_params,
                             const std::vector<std::string>& no_decay_suffixes = {"relative_position_bias_table"});

// Linear warm-up from base_lr / warmup_steps to base_lr over warmup_steps, then cosine to 0 at
// total_steps (torch_cifar_ref.py's schedule, per step). step counts from 0.
double warmup_cosine_lr(double base_lr, int64_t step, int64_t warmup_steps, int64_t total_steps);

// Scales all gradients so that their global L2 norm is at most max_norm; returns the norm before
// clipping (torch.nn.utils.clip_grad_norm_).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace mg::optim
