// Model EMA: an exponential moving average of a model's weights, evaluated in place of the weights
// themselves at the end of training (timm's ModelEmaV3, timm/utils/model_ema.py). After optimiser step t:
//
//   ema = decay_t * ema + (1 - decay_t) * model          for every floating state entry (parameters and
//                                                         BatchNorm running statistics);
//                                                         integer buffers (num_batches_tracked) are copied
//   decay_t = 0                                           for t <= update_after_step + 1 (the first update copies)
//           = decay                                       without warm-up
//           = clamp(1 - (1 + s / gamma)^(-power), min_decay, decay)    with warm-up, s = t - update_after_step - 1
//
// timm's notes: gamma 1, power 2/3 suits a million steps or more (decay 0.999 at 31.6K steps, 0.9999 at 1M);
// power 3/4 suits shorter runs (0.999 at 10K, 0.9999 at 215.4K).
//
//   nn::ModelEma ema(model, nn::ModelEmaOptions().decay(0.9998).use_warmup(true));
//   for (...) { ...; opt.step(); ++step; ema.update(model, step); }
//   { nn::EmaSwap swap(model, ema); evaluate(model); }      // the averaged weights, then the model's own again
//   info.extra = ema.state();                                // a checkpoint's "extra.ema.<name>" entries
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "maxgrad/nn/module.h"
#include "maxgrad/nn/options.h"

namespace mg::nn {

// timm's ModelEmaV3 arguments, same defaults except decay (timm: 0.9999). exclude_buffers: average the
// parameters only and copy every buffer (running statistics included) from the model.
struct ModelEmaOptions {
  MG_ARG(double, decay, 0.9998);
  MG_ARG(double, min_decay, 0.0);
  MG_ARG(int64_t, update_after_step, 0);
  MG_ARG(bool, use_warmup, false);
  MG_ARG(double, warmup_gamma, 1.0);
  MG_ARG(double, warmup_power, 2.0 / 3.0);
  MG_ARG(bool, exclude_buffers, false);
};

class ModelEma {
 public:
  // Starts as a copy of the model's state_dict (its own tensors: the model's are never aliased).
  explicit ModelEma(const Module& model, const ModelEmaOptions& options = ModelEmaOptions());

  // decay_t above, for the optimiser step count `step` (timm's train loop passes num_updates, 1 after the
  // first step).
  double get_decay(int64_t step) const;
  // ema = lerp(ema, model, 1 - get_decay(step)). The model must have the EMA's names, shapes and dtypes.
  void update(const Module& model, int64_t step);
  // The same with the fixed decay (timm's update(model) without a step).
  void update(const Module& model);
  // ema = model.
  void set(const Module& model);

  // The averaged state under the model's state_dict names (live tensors: clone to keep a snapshot).
  const NamedTensors& state_dict() const { return ema_; }
  // For checkpoints: the same tensors as "ema.<name>".
  NamedTensors state() const;
  // Reads the "ema.<name>" entries of s (other entries are ignored, so a checkpoint's whole extra list can be
  // passed). Strict: a missing, unknown or mis-shaped "ema." entry throws naming it, and nothing changes.
  void load_state(const NamedTensors& s);
  const ModelEmaOptions& options() const { return options_; }

 private:
  void apply(const Module& model, double decay, const char* who);
  ModelEmaOptions options_;
  NamedTensors ema_;
  std::vector<bool> is_parameter_;
};

// Puts the EMA's weights into the model for the scope's lifetime (evaluation runs the same model object),
// and the model's own state back, bit for bit, when it ends.
class EmaSwap {
 public:
  EmaSwap(Module& model, const ModelEma& ema);
  ~EmaSwap();
  EmaSwap(const EmaSwap&) = delete;
  EmaSwap& operator=(const EmaSwap&) = delete;

 private:
  NamedTensors live_, saved_;
};

}  // namespace mg::nn
