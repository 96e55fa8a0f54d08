#include "maxgrad/nn/ema.h"

#include <cmath>
#include <map>

#include "maxgrad/core/runtime/parallel.h"

namespace mg::nn {

namespace {

const std::string kPrefix = "ema.";

// The model's state must be the EMA's entry for entry: same names in the same order, shapes and dtypes.
void check_matches(const NamedTensors& model, const NamedTensors& ema, const char* who) {
  MG_CHECK(model.size() == ema.size(), who, "the model has ", model.size(), " state entries, the EMA ", ema.size(),
           " (was the EMA made from another model?)");
  for (size_t i = 0; i < ema.size(); ++i) {
    const auto& [name, t] = model[i];
    const auto& [ema_name, e] = ema[i];
    MG_CHECK(name == ema_name, who, "the model's state entry ", i, " is '", name, "' where the EMA has '", ema_name,
             "' (was the EMA made from another model?)");
    MG_CHECK(t.shape() == e.shape() && t.dtype() == e.dtype(), who, "'", name, "' is ", t.info(), " in the model but ",
             e.info(), " in the EMA (make the EMA after model.to(dtype))");
  }
}

// e = lerp(e, m, w) = e + w (m - e), computed as torch.lerp does: from the end the weight is nearer, so
// w = 1 gives m exactly (and w = 0 gives e).
template <typename T> void lerp(int64_t n, T* __restrict__ e, const T* __restrict__ m, T w) {
  if (std::abs(w) < T(0.5))
    for (int64_t i = 0; i < n; ++i) e[i] = e[i] + w * (m[i] - e[i]);
  else
    for (int64_t i = 0; i < n; ++i) e[i] = m[i] - (m[i] - e[i]) * (T(1) - w);
}

}  // namespace

ModelEma::ModelEma(const Module& model, const ModelEmaOptions& options) : options_(options) {
  const ModelEmaOptions& o = options_;
  MG_CHECK(o.decay() >= 0 && o.decay() <= 1 && o.min_decay() >= 0 && o.min_decay() <= 1, "ModelEma",
           "decay and min_decay must be in [0, 1], got ", o.decay(), " and ", o.min_decay());
  MG_CHECK(o.warmup_gamma() > 0 && o.warmup_power() > 0, "ModelEma", "warmup_gamma and warmup_power must be > 0, got ",
           o.warmup_gamma(), " and ", o.warmup_power());
  NoGradGuard no_grad;
  for (const auto& [name, t] : model.state_dict()) ema_.emplace_back(name, t.detach().clone());
  std::map<std::string, bool> params;
  for (const auto& [name, t] : model.named_parameters()) params[name] = true;
  for (const auto& [name, t] : ema_) is_parameter_.push_back(params.count(name) > 0);
}

double ModelEma::get_decay(int64_t step) const {
  const int64_t s = std::max<int64_t>(0, step - options_.update_after_step() - 1);
  if (s <= 0) return 0.0;
  if (!options_.use_warmup()) return options_.decay();
  const double d = 1 - std::pow(1 + static_cast<double>(s) / options_.warmup_gamma(), -options_.warmup_power());
  return std::max(std::min(d, options_.decay()), options_.min_decay());
}

void ModelEma::update(const Module& model, int64_t step) { apply(model, get_decay(step), "ModelEma::update"); }
void ModelEma::update(const Module& model) { apply(model, options_.decay(), "ModelEma::update"); }
void ModelEma::set(const Module& model) { apply(model, 0.0, "ModelEma::set"); }

void ModelEma::apply(const Module& model, double decay, const char* who) {
  const NamedTensors current = model.state_dict();
  check_matches(current, ema_, who);
  NoGradGuard no_grad;
  for (size_t i = 0; i < ema_.size(); ++i) {
    Tensor& e = ema_[i].second;
    const Tensor m = current[i].second.contiguous();
    const bool average = is_floating(e.dtype()) && (is_parameter_[i] || !options_.exclude_buffers());
    if (!average || decay == 0.0) {  // integer buffers, buffers under exclude_buffers, and set()
      e.copy_(m);
      continue;
    }
    MG_DISPATCH_FLOAT(e.dtype(), who, [&] {
      scalar_t* pe = e.data<scalar_t>();
      const scalar_t* pm = m.data<scalar_t>();
      const auto w = static_cast<scalar_t>(1 - decay);  // ema = decay ema + (1 - decay) model
      parallel_for(e.numel(), 16384, [&](int64_t i0, int64_t i1) { lerp(i1 - i0, pe + i0, pm + i0, w); });
    });
  }
}

NamedTensors ModelEma::state() const {
  NamedTensors s;
  for (const auto& [name, t] : ema_) s.emplace_back(kPrefix + name, t);
  return s;
}

void ModelEma::load_state(const NamedTensors& s) {
  std::map<std::string, Tensor> given;
  for (const auto& [name, t] : s)
    if (name.compare(0, kPrefix.size(), kPrefix) == 0) given[name.substr(kPrefix.size())] = t;
  std::string problems;
  for (const auto& [name, e] : ema_) {
    auto it = given.find(name);
    if (it == given.end())
      problems += "\n  missing 'ema." + name + "'";
    else if (it->second.shape() != e.shape() || is_floating(it->second.dtype()) != is_floating(e.dtype()))
      problems += "\n  'ema." + name + "' is " + it->second.info() + ", expected " + e.info();
  }
  std::map<std::string, bool> known;
  for (const auto& [name, e] : ema_) known[name] = true;
  for (const auto& [name, t] : given)
    if (!known.count(name)) problems += "\n  unexpected 'ema." + name + "'";
  MG_CHECK(problems.empty(), "ModelEma::load_state", "the state does not fit this EMA; nothing was loaded:", problems);
  NoGradGuard no_grad;
  for (auto& [name, e] : ema_) e.copy_(given[name]);
}

EmaSwap::EmaSwap(Module& model, const ModelEma& ema) : live_(model.state_dict()) {
  check_matches(live_, ema.state_dict(), "EmaSwap");
  NoGradGuard no_grad;
  for (const auto& [name, t] : live_) saved_.emplace_back(name, t.detach().clone());
  for (size_t i = 0; i < live_.size(); ++i) live_[i].second.copy_(ema.state_dict()[i].second);
}

EmaSwap::~EmaSwap() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) live_[i].second.copy_(saved_[i].second);
}

}  // namespace mg::nn
