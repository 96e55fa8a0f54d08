#include "maxgrad/nn/precise_bn.h"

#include <algorithm>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/nn/dist/distributed.h"
#include "maxgrad/nn/layers.h"

namespace mg::nn {

std::vector<std::pair<std::string, BatchNorm2d*>> batch_norm_layers(Module& model, const std::string& prefix) {
  std::vector<std::pair<std::string, BatchNorm2d*>> out;
  if (auto* bn = dynamic_cast<BatchNorm2d*>(&model))
    out.emplace_back(prefix.empty() ? prefix : prefix.substr(0, prefix.size() - 1), bn);
  for (const auto& [name, child] : model.named_children())
    for (auto& entry : batch_norm_layers(*child, prefix + name + ".")) out.push_back(std::move(entry));
  return out;
}

namespace {

// Per channel, over the values seen so far: S1 = sum x, S2 = sum x^2 (in double), from each
// batch's own mean and biased variance: S1 += n mean_b, S2 += n (var_b + mean_b^2).
struct Sums {
  double count = 0;
  std::vector<double> s1, s2;
};

// Everything a run changes, to be put back: every module's mode and every BatchNorm's buffers.
struct Saved {
  std::vector<std::pair<Module*, bool>> modes;
  std::vector<NamedTensors> buffers;
};

}  // namespace

std::vector<BnPopulation> bn_population_stats(Module& model, int64_t num_batches,
                                              const std::function<void(int64_t)>& run_batch,
                                              const std::shared_ptr<dist::ProcessGroup>& group) {
  auto layers = batch_norm_layers(model);
  MG_CHECK(!layers.empty(), "precise BatchNorm", "the model has no BatchNorm2d layer");
  MG_CHECK(num_batches > 0, "precise BatchNorm", "needs at least one batch, got ", num_batches);
  std::vector<BnPopulation> pop(layers.size());
  std::vector<Sums> sums(layers.size());

  Saved saved;
  model.apply([&](Module& m) { saved.modes.emplace_back(&m, m.is_training()); });
  for (auto& [name, bn] : layers) {
    NamedTensors b;
    for (const auto& [n, t] : bn->named_buffers()) b.emplace_back(n, t.clone());
    saved.buffers.push_back(std::move(b));
  }
  // BatchNorm in training mode (each batch normalised with its own statistics); stochastic depth and
  // dropout off, so every sample takes the path evaluation takes
  model.train(true);
  model.apply([](Module& m) {
    if (dynamic_cast<StochasticDepth*>(&m) || dynamic_cast<Dropout*>(&m)) m.train(false);
  });
  for (size_t l = 0; l < layers.size(); ++l) {
    pop[l].name = layers[l].first;
    pop[l].layer = layers[l].second;
    layers[l].second->input_observer = [&, l](const Tensor& x) {
      NoGradGuard no_grad;
      const Tensor x64 = x.detach().to(DType::Float64);
      std::vector<int64_t> dims{0};
      for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
      const std::vector<double> m = mean(x64, dims).to_vector(), v = var(x64, dims, /*correction=*/0).to_vector();
      const double n = static_cast<double>(x.numel() / x.size(1));
      Sums& s = sums[l];
      if (s.s1.empty()) s.s1.assign(m.size(), 0.0), s.s2.assign(m.size(), 0.0);
      for (size_t c = 0; c < m.size(); ++c) s.s1[c] += n * m[c], s.s2[c] += n * (v[c] + m[c] * m[c]);
      s.count += n;
      pop[l].batch_mean.push_back(m);
      pop[l].batch_var.push_back(v);
    };
  }
  auto restore = [&] {
    for (auto& [name, bn] : layers) bn->input_observer = nullptr;
    NoGradGuard no_grad;
    for (size_t l = 0; l < layers.size(); ++l) {
      NamedTensors now = layers[l].second->named_buffers();
      for (size_t i = 0; i < now.size(); ++i) now[i].second.copy_(saved.buffers[l][i].second);
    }
    for (auto& [m, on] : saved.modes) m->train(on);  // depth first: a parent before its children
  };
  try {
    NoGradGuard no_grad;
    for (int64_t i = 0; i < num_batches; ++i) run_batch(i);
  } catch (...) {
    restore();
    throw;
  }
  restore();

  for (size_t l = 0; l < layers.size(); ++l) {
    Sums& s = sums[l];
    MG_CHECK(!s.s1.empty(), "precise BatchNorm", "layer ", pop[l].name, " saw no batch in training mode");
    if (group && group->size() > 1) {  // all ranks' values together: one allreduce of (M, S1, S2)
      std::vector<double> buf{s.count};
      buf.insert(buf.end(), s.s1.begin(), s.s1.end());
      buf.insert(buf.end(), s.s2.begin(), s.s2.end());
      group->allreduce_sum(buf.data(), static_cast<int64_t>(buf.size()));
      const size_t c = s.s1.size();
      s.count = buf[0];
      std::copy(buf.begin() + 1, buf.begin() + 1 + static_cast<std::ptrdiff_t>(c), s.s1.begin());
      std::copy(buf.begin() + 1 + static_cast<std::ptrdiff_t>(c), buf.end(), s.s2.begin());
    }
    MG_CHECK(s.count > 1, "precise BatchNorm", "layer ", pop[l].name, " saw only ", s.count,
             " value per channel: the unbiased variance needs more than 1");
    BnPopulation& p = pop[l];
    p.count = static_cast<int64_t>(s.count);
    for (size_t c = 0; c < s.s1.size(); ++c) {
      const double m = s.s1[c] / s.count;
      const double biased = std::max(0.0, s.s2[c] / s.count - m * m);
      p.mean.push_back(m);
      p.var.push_back(biased * s.count / (s.count - 1));
    }
  }
  return pop;
}

std::vector<BnPopulation> update_bn_stats(Module& model, int64_t num_batches,
                                          const std::function<void(int64_t)>& run_batch,
                                          const std::shared_ptr<dist::ProcessGroup>& group) {
  std::vector<BnPopulation> pop = bn_population_stats(model, num_batches, run_batch, group);
  NoGradGuard no_grad;
  for (const BnPopulation& p : pop) {
    const int64_t c = static_cast<int64_t>(p.mean.size());
    p.layer->running_mean.copy_(Tensor::from_vector(p.mean, {c}, p.layer->running_mean.dtype()));
    p.layer->running_var.copy_(Tensor::from_vector(p.var, {c}, p.layer->running_var.dtype()));
  }
  return pop;
}

}  // namespace mg::nn
