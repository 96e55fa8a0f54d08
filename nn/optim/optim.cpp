#include "maxgrad/nn/optim/optim.h"

#include <cmath>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/runtime/parallel.h"

namespace mg::optim {

Optimizer::Optimizer(std::vector<Tensor> params, double lr, std::vector<bool> decay_mask)
    : params_(std::move(params)), decay_mask_(std::move(decay_mask)), lr(lr) {
  MG_CHECK(decay_mask_.empty() || decay_mask_.size() == params_.size(), "optimizer", "decay_mask has ",
           decay_mask_.size(), " entries for ", params_.size(), " parameters (one per parameter, or none)");
}

std::vector<bool> decay_mask(const NamedTensors& named_params, const std::vector<std::string>& no_decay_suffixes) {
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  std::vector<bool> mask;
  for (const auto& [name, p] : named_params) {
    bool decay = p.dim() > 1 && !ends_with(name, ".bias") && name != "bias";
    for (const std::string& tail : no_decay_suffixes) decay = decay && !ends_with(name, tail);
    mask.push_back(decay);
  }
  return mask;
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

namespace {
// Runs f(p, g, i0, i1) over chunks [i0, i1) of the elements of a contiguous parameter p and its
// gradient g. Each optimiser's update is a function over __restrict__ pointers (sgd_update,
// adamw_update: a parameter, its gradient and the optimiser's slots never overlap): written inline
// in the lambda, GCC cannot prove that and leaves AdamW's loop scalar (a sqrt and a divide per
// element).
template <typename T, typename F> void for_elements(Tensor& p, const Tensor& g_in, F f) {
  Tensor g = g_in.dtype() == p.dtype() ? g_in.contiguous() : g_in.to(p.dtype()).contiguous();
  T* pp = p.data<T>();
  const T* pg = g.data<T>();
  parallel_for(p.numel(), 16384, [&](int64_t i0, int64_t i1) { f(pp, pg, i0, i1); });
}

void load_slots(const NamedTensors& s, const std::string& prefix, const std::vector<Tensor>& params,
                std::vector<Tensor>& slots, bool optional_slots) {
  std::vector<Tensor> loaded(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string key = prefix + "." + std::to_string(i);
    for (const auto& [n, t] : s)
      if (n == key) loaded[i] = t;
    MG_CHECK(loaded[i].defined() || optional_slots, "optimizer load_state", "missing '", key, "'");
    MG_CHECK(!loaded[i].defined() || loaded[i].shape() == params[i].shape(), "optimizer load_state", "'", key,
             "' has shape ", loaded[i].shape_str(), " but parameter ", i, " is ", params[i].info());
  }
  slots.assign(params.size(), Tensor());
  for (size_t i = 0; i < params.size(); ++i)
    if (loaded[i].defined()) slots[i] = loaded[i].to(params[i].dtype()).clone();
}

// Every key of s must be one this optimiser writes: a state from another optimiser (or from a
// model with more parameters) is an error, not something to half-load.
void check_known(const NamedTensors& s, const std::vector<std::string>& prefixes, size_t n_params, bool has_step,
                 const std::string& who) {
  std::string unknown;
  for (const auto& [key, t] : s) {
    bool ok = has_step && key == "step";
    for (const std::string& p : prefixes)
      if (!ok && key.size() > p.size() + 1 && key.compare(0, p.size() + 1, p + ".") == 0) {
        const std::string idx = key.substr(p.size() + 1);
        // At most 18 digits, so stoull cannot throw out_of_range on a hostile file's key; and written
        // as state() writes it ("7", not "07", which would be accepted here yet never loaded).
        ok = idx.size() <= 18 && idx.find_first_not_of("0123456789") == std::string::npos &&
             std::stoull(idx) < n_params && std::to_string(std::stoull(idx)) == idx;
      }
    if (!ok) unknown += (unknown.empty() ? "'" : ", '") + key + "'";
  }
  MG_CHECK(unknown.empty(), who + " load_state", "unexpected entries ", unknown, " (this optimiser has ", n_params,
           " parameters; is the state from another optimiser or model?)");
}

double scalar_entry(const NamedTensors& s, const std::string& key) {
  for (const auto& [n, t] : s)
    if (n == key) return t.item();
  throw Error("optimizer load_state: missing '" + key + "'");
}
}  // namespace

// ---- SGD ----

SGD::SGD(std::vector<Tensor> params, const SGDOptions& o, std::vector<bool> decay_mask)
    : Optimizer(std::move(params), o.lr(), std::move(decay_mask)),
      momentum(o.momentum()),
      weight_decay(o.weight_decay()),
      dampening(o.dampening()),
      nesterov(o.nesterov()),
      buf_(params_.size()) {
  MG_CHECK(!nesterov || (momentum > 0 && dampening == 0), "SGD",
           "Nesterov momentum needs momentum > 0 and dampening 0");
}

namespace {
// One chunk of SGD's update: d = g + wd p, through the momentum buffer if any; p -= lr d.
template <typename T> struct SgdConsts {
  T wd, mu, one_minus_damp, rate;
  bool momentum, first, nesterov;
};
template <typename T>
void sgd_update(int64_t n, T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, const SgdConsts<T>& c) {
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i] + c.wd * p[i];
    if (c.momentum) {
      buf[i] = c.first ? d : c.mu * buf[i] + c.one_minus_damp * d;
      d = c.nesterov ? d + c.mu * buf[i] : buf[i];
    }
    p[i] -= c.rate * d;
  }
}
}  // namespace

void SGD::step() {
  NoGradGuard no_grad;
  for (size_t k = 0; k < params_.size(); ++k) {
    Tensor& p = params_[k];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    const bool first = !buf_[k].defined();
    if (momentum != 0 && first) buf_[k] = zeros(p.shape(), p.dtype());
    Tensor b = buf_[k];
    const double mu = momentum, wd = decays(k) ? weight_decay : 0.0, damp = dampening, rate = lr;
    const bool nest = nesterov;
    MG_DISPATCH_FLOAT(p.dtype(), "SGD", [&] {
      using T = scalar_t;
      T* buf = b.defined() ? b.data<T>() : nullptr;
      const SgdConsts<T> c{
          static_cast<T>(wd), static_cast<T>(mu), static_cast<T>(1 - damp), static_cast<T>(rate), mu != 0, first, nest};
      for_elements<T>(p, g, [&](T* pp, const T* pg, int64_t i0, int64_t i1) {
        sgd_update(i1 - i0, pp + i0, pg + i0, buf ? buf + i0 : nullptr, c);
      });
    });
  }
}

NamedTensors SGD::state() const {
  NamedTensors s;
  for (size_t i = 0; i < buf_.size(); ++i)
    if (buf_[i].defined()) s.emplace_back("momentum_buffer." + std::to_string(i), buf_[i]);
  return s;
}

void SGD::load_state(const NamedTensors& s) {
  check_known(s, {"momentum_buffer"}, params_.size(), false, "SGD");
  load_slots(s, "momentum_buffer", params_, buf_, true);
}

// ---- AdamW ----

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& o) : AdamW(std::move(params), o, {}) {}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& o, std::vector<bool> decay_mask)
    : Optimizer(std::move(params), o.lr(), std::move(decay_mask)),
      beta1(o.betas().first),
      beta2(o.betas().second),
      eps(o.eps()),
      weight_decay(o.weight_decay()) {
  MG_CHECK(lr >= 0 && eps >= 0 && beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "AdamW",
           "invalid hyper-parameters lr ", lr, ", betas (", beta1, ", ", beta2, "), eps ", eps);
  for (const Tensor& p : params_) {
    exp_avg_.push_back(zeros(p.shape(), p.dtype()));
    exp_avg_sq_.push_back(zeros(p.shape(), p.dtype()));
  }
}

namespace {
// One chunk of AdamW's update: p *= decay; m, v move towards g and g^2; p -= size * m / (sqrt(v) / bc + eps).
template <typename T> void adamw_update(int64_t n, T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                                        T* __restrict__ v, T decay, T b1, T b2, T bc, T eps, T size) {
  for (int64_t i = 0; i < n; ++i) {
    p[i] *= decay;
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    const T denom = std::sqrt(v[i]) / bc + eps;
    p[i] -= size * m[i] / denom;
  }
}
}  // namespace

void AdamW::step() {
  NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1 - std::pow(beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(beta2, static_cast<double>(step_));
  const double step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2), decay = 1 - lr * weight_decay;
  for (size_t k = 0; k < params_.size(); ++k) {
    Tensor& p = params_[k];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    MG_DISPATCH_FLOAT(p.dtype(), "AdamW", [&] {
      using T = scalar_t;
      T* m = exp_avg_[k].data<T>();
      T* v = exp_avg_sq_[k].data<T>();
      const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
      const T dec = static_cast<T>(decays(k) ? decay : 1.0), bc = static_cast<T>(bc2_sqrt), ep = static_cast<T>(eps);
      const T size = static_cast<T>(step_size);
      for_elements<T>(p, g, [&](T* pp, const T* pg, int64_t i0, int64_t i1) {
        adamw_update(i1 - i0, pp + i0, pg + i0, m + i0, v + i0, dec, b1, b2, bc, ep, size);
      });
    });
  }
}

NamedTensors AdamW::state() const {
  NamedTensors s{{"step", Tensor::scalar(static_cast<double>(step_), DType::Float64)}};
  for (size_t i = 0; i < params_.size(); ++i) {
    s.emplace_back("exp_avg." + std::to_string(i), exp_avg_[i]);
    s.emplace_back("exp_avg_sq." + std::to_string(i), exp_avg_sq_[i]);
  }
  return s;
}

void AdamW::load_state(const NamedTensors& s) {
  check_known(s, {"exp_avg", "exp_avg_sq"}, params_.size(), true, "AdamW");
  const double st = scalar_entry(s, "step");
  MG_CHECK(st >= 0 && st <= 0x1p53 && st == std::floor(st), "AdamW load_state",
           "'step' must be a whole number in [0, 2^53], got ", st);
  std::vector<Tensor> m, v;
  load_slots(s, "exp_avg", params_, m, false);
  load_slots(s, "exp_avg_sq", params_, v, false);
  exp_avg_ = m, exp_avg_sq_ = v, step_ = static_cast<int64_t>(st);
}

// ---- schedule and clipping ----

double warmup_cosine_lr(double base_lr, int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  return base_lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step - warmup_steps) / span));
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  double total = 0;
  for (const Tensor& p : params)
    if (p.grad().defined()) {
      const Tensor g = p.grad();
      total += sum(mul(g, g)).item();
    }
  const double norm = std::sqrt(total);
  const double scale = max_norm / (norm + 1e-6);
  if (scale < 1) {
    NoGradGuard no_grad;
    for (const Tensor& p : params)
      if (p.grad().defined()) {
        Tensor t = p;
        t.set_grad(mul(p.grad(), scale));  // out of place: a gradient tensor may be shared
      }
  }
  return norm;
}

}  // namespace mg::optim
