// bn_inspect: are a checkpoint's BatchNorm running statistics right for its weights?
//
//   bn_inspect --checkpoint runs/cifar/last.safetensors [--data DIR] [--batches 32] [--batch B] [model flags]
//
// Evaluation normalises with running_mean and running_var, an exponential average of the batch
// statistics seen during training (docs/batchnorm.md). This program measures how far they are from
// what they should be: the population statistics of the training images under the checkpoint's
// weights (nn::bn_population_stats, over --batches shuffled batches of --batch images, normalised as
// train_cifar does), and sets that against how far ONE batch's own statistics fall from the same
// population: the sampling noise a momentum of 1 would leave.
//
// The inputs are by default what training fed the running statistics: train_cifar's crop + flip and
// stochastic depth, drawn from a seed of their own. --as-evaluated takes them as evaluation does
// (neither); then the comparison also holds the shift between training and evaluation inputs (in
// the late blocks of a model trained with stochastic depth, several times one batch's scatter),
// which no momentum can fix and recomputing the statistics (nn/precise_bn.h) does.
//
// Deviation of statistics (mean m, variance v) from the population (mean mu, unbiased variance s2),
// per channel c, in what evaluation does with them, (x - m) / sqrt(v + eps):
//   d_c^2 = (m_c - mu_c)^2 / (s2_c + eps)  +  ln((v_c + eps) / (s2_c + eps))^2
// (the shift of the normalised output in population standard deviations, and the log of its wrong
// scale, squared), and for a layer D = sqrt(mean over channels of d_c^2).
//   running   D of the state_dict's running_mean / running_var (as trained, not recomputed)
//   batch     D of each batch's own mean and unbiased variance, against the population of the OTHER
//             batches (leave one out, so no batch is compared with an average that contains it);
//             the table shows the median and the largest over the batches
//   ratio     running / median batch
// Verdict per layer:
//   healthy   ratio < 0.5: much closer than one batch (a long average; an average over the last
//             k batches has a ratio of about 1/sqrt(k), a momentum m one of sqrt(m / (2 - m)), 0.5
//             at m = 0.4). The population is itself known to about 1/sqrt(batches) of a batch's
//             scatter, so even exact statistics show a ratio near that (0.18 at 32 batches): hence
//             at least 8 batches.
//   lagging   running > 2 x the largest batch: further than any single batch is (statistics of
//             earlier weights, or never updated). The margin keeps a running value that IS one
//             batch, as at momentum 0.99, from counting as lagging because that batch happened to
//             be more extreme than all those drawn here (measured: up to 1.06 x the largest).
//   noisy     anything between: about as far as one batch (only the last few batches count).
// The model's verdict is its worst layer's (lagging > noisy > healthy, then the highest ratio),
// named in the JSON object on the last line of stdout.
//
// Exit status: 0 done; 2 a bad command line, an unreadable checkpoint, a checkpoint without
// BatchNorm layers or one the model flags do not describe, data that is missing, empty, or of
// another image size than the model's. The program writes no file.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "examples/common/checkpoint_config.h"
#include "examples/common/train_data.h"
#include "maxgrad/core/runtime/blas_select.h"
#include "maxgrad/data/loader.h"
#include "maxgrad/nn/layers.h"
#include "maxgrad/nn/precise_bn.h"
#include "maxgrad/nn/serialize/safetensors.h"

using namespace mg;

namespace {

constexpr int kExitError = 1, kExitUsage = 2;
constexpr uint64_t kSeed = 20240229;  // not train_cifar's 0: other batches than training drew
constexpr double kHealthyRatio = 0.5, kLaggingFactor = 2.0;

struct InspectFlags {
  std::optional<std::string> checkpoint, data;
  std::optional<int64_t> batches, batch;
  bool synthetic = false, as_evaluated = false;
  void add_to(cli::Flags& f) {
    f.add_string("checkpoint", "a train_cifar checkpoint (OUT/last.safetensors)", &checkpoint);
    f.add_string("data", "CIFAR-10 folder, as train_cifar takes it [the checkpoint's training data]", &data);
    f.add_switch("synthetic", "use the built-in synthetic set", &synthetic);
    f.add_switch("as-evaluated", "inputs as evaluation sees them: no crop + flip, no stochastic depth", &as_evaluated);
    f.add_int("batches", "batches the population statistics are pooled over [32]", &batches, 8, 100000);
    f.add_int("batch", "images per batch [the checkpoint's training batch, else 128]", &batch, 2, 65536);
  }
};
constexpr const char* kSynopsis =
    "--checkpoint CK.safetensors [--data DIR | --synthetic] [--batches 32] [--batch B] [model flags]";

// Statistics of one layer as evaluation would use them, against a population (mean, unbiased var).
double deviation(const std::vector<double>& m, const std::vector<double>& v, const std::vector<double>& mu,
                 const std::vector<double>& s2, double eps) {
  double sum = 0;
  for (size_t c = 0; c < mu.size(); ++c) {
    const double shift = (m[c] - mu[c]) / std::sqrt(s2[c] + eps);
    const double scale = std::log((v[c] + eps) / (s2[c] + eps));
    sum += shift * shift + scale * scale;
  }
  return std::sqrt(sum / static_cast<double>(mu.size()));
}

struct LayerReport {
  std::string name;
  int64_t channels = 0, tracked = 0;
  double running = 0, batch_median = 0, batch_max = 0, ratio = 0;
  std::string verdict;
  int severity = 0;  // 0 healthy, 1 noisy, 2 lagging
};

LayerReport inspect(const nn::BnPopulation& p) {
  LayerReport r;
  r.name = p.name;
  const auto channels = p.mean.size();
  r.channels = static_cast<int64_t>(channels);
  r.tracked = static_cast<int64_t>(p.layer->num_batches_tracked.item());
  const double eps = p.layer->options.eps();
  r.running = deviation(p.layer->running_mean.to_vector(), p.layer->running_var.to_vector(), p.mean, p.var, eps);

  // Batch b against the other batches pooled: per channel S1 = sum x, S2 = sum x^2 over M values,
  // all batches the same size n (drop_last).
  const size_t nb = p.batch_mean.size();
  const double M = static_cast<double>(p.count), n = M / static_cast<double>(nb), rest = M - n;
  std::vector<double> s1(channels), s2(channels);
  for (size_t c = 0; c < channels; ++c) {
    const double biased = p.var[c] * (M - 1) / M;
    s1[c] = M * p.mean[c], s2[c] = M * (biased + p.mean[c] * p.mean[c]);
  }
  std::vector<double> devs;
  std::vector<double> mu(channels), var(channels), bm(channels), bv(channels);
  for (size_t b = 0; b < nb; ++b) {
    for (size_t c = 0; c < channels; ++c) {
      const double m = p.batch_mean[b][c], v = p.batch_var[b][c];
      mu[c] = (s1[c] - n * m) / rest;
      const double biased = std::max(0.0, (s2[c] - n * (v + m * m)) / rest - mu[c] * mu[c]);
      var[c] = biased * rest / (rest - 1);
      bm[c] = m, bv[c] = v * n / (n - 1);  // unbiased, as running_var is updated with
    }
    devs.push_back(deviation(bm, bv, mu, var, eps));
  }
  std::sort(devs.begin(), devs.end());
  r.batch_median = nb % 2 ? devs[nb / 2] : 0.5 * (devs[nb / 2 - 1] + devs[nb / 2]);
  r.batch_max = devs.back();
  r.ratio = r.running / r.batch_median;
  if (r.running > kLaggingFactor * r.batch_max)
    r.verdict = "lagging", r.severity = 2;
  else if (r.ratio >= kHealthyRatio)
    r.verdict = "noisy", r.severity = 1;
  else
    r.verdict = "healthy", r.severity = 0;
  return r;
}

// (N, C, H, W) float32 from the loader, in the run's dtype.
Tensor images_of(const data::Batch& b, DType dt) {
  Tensor x = Tensor::empty({b.n, b.c, b.h, b.w}, DType::Float32);
  std::memcpy(x.data<float>(), b.x.data(), b.x.size() * sizeof(float));
  return dt == DType::Float32 ? x : x.to(dt);
}

std::string fixed(double x, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << x;
  return s.str();
}

// A usage-like failure: the message, exit status 2, nothing else done.
struct BadInput : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int run(int argc, char** argv) {
  InspectFlags in;
  cli::ModelFlags model_flags;
  cli::Flags flags("bn_inspect", kSynopsis);
  model_flags.add_to(flags);
  in.add_to(flags);
  flags.parse_or_exit(argc, argv);
  if (!in.checkpoint) {
    std::cerr << "bn_inspect: --checkpoint is required\n\n" << flags.usage();
    return kExitUsage;
  }

  // Everything that can be wrong with the inputs is found before any computing.
  serialize::Checkpoint ck;
  cli::TrainFlags saved;
  models::MaxVitConfig cfg;
  cli::TrainData data;
  int64_t batch = 0, batches = 0;
  DType dt = DType::Float32;
  try {
    ck = serialize::read_checkpoint(*in.checkpoint);
    int64_t bn_layers = 0;
    for (const auto& [name, t] : ck.model)
      bn_layers += name.size() > 13 && name.compare(name.size() - 13, 13, ".running_mean") == 0;
    if (bn_layers == 0)
      throw BadInput(cat("checkpoint ", *in.checkpoint, " has no BatchNorm layer (none of its ", ck.model.size(),
                         " model tensors is a NAME.running_mean): there is nothing to inspect"));
    try {
      InspectFlags again;  // parsed a second time, with the model flags over the checkpoint's
      saved = cli::checkpoint_flags(ck, std::vector<std::string>(argv + 1, argv + argc), "bn_inspect",
                                    [&](cli::Flags& f) { again.add_to(f); });
      cfg = saved.model.config(0.0);
    } catch (const cli::UsageError& e) {
      throw BadInput(cat("checkpoint ", *in.checkpoint, " with these model flags: ", e.what()));
    }
    try {
      cli::check_config_fits(cfg, ck);
    } catch (const Error& e) {
      throw BadInput(e.what());
    }
    dt = saved.model.tensor_dtype();
    batch = in.batch.value_or(saved.recipe().batch);
    batches = in.batches.value_or(32);

    // The data: --data or --synthetic, else the checkpoint's own training data, else where train_cifar looks.
    std::optional<std::string> dir = in.data;
    bool synthetic = in.synthetic;
    const auto& meta = ck.info.metadata;
    if (!dir && !synthetic) {
      if (auto kind = meta.find("data"); kind != meta.end() && kind->second == "synthetic") synthetic = true;
      if (auto d = meta.find("data_dir"); d != meta.end() && !d->second.empty()) dir = d->second;
    }
    // The first images of each class, enough for the batches if there are 10 classes or more.
    const int64_t per_class = (batches * batch + 9) / 10;
    try {
      data = cli::load_train_data(dir, synthetic, per_class, 1, 0, std::cerr);
    } catch (const data::DataError& e) {
      throw BadInput(e.what());
    }
    const data::ImageShape shape = data.train.shape();
    if (shape.channels != 3 || shape.height != cfg.input_h || shape.width != cfg.input_w)
      throw BadInput(cat("the training images of ", data.description, " are ", shape.channels, "x", shape.height, "x",
                         shape.width, " (channels x height x width), but the model takes 3x", cfg.input_h, "x",
                         cfg.input_w));
    if (data.train.size() < 2 * batch)
      throw BadInput(cat("the training set of ", data.description, " has ", data.train.size(),
                         " images, fewer than two batches of ", batch, " (--batch)"));
  } catch (const BadInput& e) {
    std::cerr << "bn_inspect: " << e.what() << "\n";
    return kExitUsage;
  } catch (const Error& e) {  // the checkpoint file: unreadable, malformed, damaged
    std::cerr << "bn_inspect: " << e.what() << "\n";
    return kExitUsage;
  } catch (const safetensors::Error& e) {  // its bytes: malformed, or not what its checksums say
    std::cerr << "bn_inspect: " << e.what() << "\n";
    return kExitUsage;
  }
  saved.model.apply_threads();
  models::MaxVit model(cfg, 0);
  model.to(dt);
  try {
    serialize::restore_weights(ck, model);
  } catch (const Error& e) {
    std::cerr << "bn_inspect: the model flags do not describe " << *in.checkpoint << ": " << e.what() << "\n";
    return kExitUsage;
  }
  if (data.train.size() < batches * batch) {
    const int64_t fit = data.train.size() / batch;
    std::cerr << "bn_inspect: " << data.description << " holds " << data.train.size() << " training images: " << fit
              << " batches of " << batch << ", not " << batches << "\n";
    batches = fit;
  }

  data::LoaderOptions lo;
  lo.batch_size = batch, lo.shuffle = true, lo.drop_last = true, lo.seed = kSeed, lo.augment = !in.as_evaluated;
  lo.norm = cli::checkpoint_normalization(ck);
  data::DataLoader loader(data.train, lo);
  loader.start_epoch(0);
  const std::vector<nn::BnPopulation> pop = nn::bn_population_stats(model, batches, [&](int64_t i) {
    data::Batch b;
    MG_CHECK(loader.next(b), "bn_inspect", "the loader ended before batch ", i);
    // bn_population_stats turns stochastic depth off (evaluation's path); training drew it
    if (!in.as_evaluated)
      model.apply([](nn::Module& m) {
        if (dynamic_cast<nn::StochasticDepth*>(&m)) m.train(true);
      });
    model(images_of(b, dt));
  });

  std::vector<LayerReport> rows;
  for (const nn::BnPopulation& p : pop) rows.push_back(inspect(p));
  size_t width = 5;
  for (const LayerReport& r : rows) width = std::max(width, r.name.size());

  const double momentum = cfg.bn.momentum().value_or(-1);
  std::cout << "bn_inspect: " << *in.checkpoint << " (trained " << ck.info.step << " steps, BatchNorm momentum "
            << (momentum < 0 ? std::string("cumulative") : cli::exact_decimal(momentum)) << "), " << rows.size()
            << " BatchNorm layers\n"
            << "population: " << batches << " batches of " << batch << " training images of " << data.description
            << (in.as_evaluated ? " as evaluation sees them (no crop + flip, no stochastic depth)\n"
                                : " as training saw them (crop + flip, stochastic depth)\n")
            << "deviation from the population: RMS over channels of |mean shift| / std and |log var ratio|\n\n";
  std::cout << std::left << std::setw(static_cast<int>(width)) << "layer" << std::right << std::setw(10) << "channels"
            << std::setw(9) << "tracked" << std::setw(10) << "running" << std::setw(13) << "batch median"
            << std::setw(11) << "batch max" << std::setw(9) << "ratio"
            << "  verdict\n";
  for (const LayerReport& r : rows)
    std::cout << std::left << std::setw(static_cast<int>(width)) << r.name << std::right << std::setw(10) << r.channels
              << std::setw(9) << r.tracked << std::setw(10) << fixed(r.running, 4) << std::setw(13)
              << fixed(r.batch_median, 4) << std::setw(11) << fixed(r.batch_max, 4) << std::setw(9) << fixed(r.ratio, 2)
              << "  " << r.verdict << "\n";

  const LayerReport& worst = *std::max_element(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.severity != b.severity ? a.severity < b.severity : a.ratio < b.ratio;
  });
  std::cout << "\nverdicts: healthy ratio < " << kHealthyRatio << "; lagging running > " << kLaggingFactor
            << " x batch max; noisy between. Worst: " << worst.name << " (" << worst.verdict << ", ratio "
            << fixed(worst.ratio, 2) << ")\n";
  std::cout << "{\"layers\": " << rows.size() << ", \"verdict\": \"" << worst.verdict << "\", \"worst_layer\": \""
            << worst.name << "\"}\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  select_blas_kernels(argc, argv);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bn_inspect: " << e.what() << "\n";
    return kExitError;
  }
}
