// train_cifar: trains a MaxViT on CIFAR-10 with the reference recipe (shared/refs.md): AdamW, one
// warm-up epoch then cosine decay per step, label smoothing, crop + flip augmentation, stochastic
// depth. Flags: `train_cifar --help`; the model flags are shared/spec/cli.md's.
//
//   train_cifar --data data/cifar10 --out runs/cifar            # the reference run, 12 epochs
//   train_cifar --subset 100 --epochs 2 --out /tmp/quick        # a quick look (synthetic without data)
//   train_cifar --out runs/cifar --resume                       # go on after an interruption
//
// A resumed run ends bitwise where an uninterrupted one would: the data order and augmentation are
// functions of (seed, epoch, image), and the checkpoint carries the weights, AdamW's moments, the
// drop-path generator, the schedule position (epoch, batch, step) and the epoch's running sums.
//
// Exit status: 0 done (or stopped by --max-steps), 1 an error (data, files), 2 a usage error,
// 3 the loss became NaN or infinite (the last good checkpoint is kept).
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>

#include "core/blas_select.h"
#include "core/parallel.h"
#include "data/loader.h"
#include "examples/common/progress.h"
#include "examples/common/train_data.h"
#include "examples/common/train_flags.h"
#include "examples/common/train_report.h"
#include "nn/checkpoint.h"

using namespace mg;
namespace fs = std::filesystem;

namespace {

constexpr int kExitError = 1, kExitUsage = 2, kExitNaN = 3;

// (N, C, H, W) float32 from the loader, in the run's dtype; labels (N) int64.
Tensor images_of(const data::Batch& b, DType dt) {
  Tensor x = Tensor::empty({b.n, b.c, b.h, b.w}, DType::Float32);
  std::memcpy(x.data<float>(), b.x.data(), b.x.size() * sizeof(float));
  return dt == DType::Float32 ? x : x.to(dt);
}
Tensor labels_of(const data::Batch& b) { return Tensor::from_vector_i64(b.y, {b.n}); }

int64_t correct_count(const Tensor& logits, const Tensor& y, std::vector<int64_t>* confusion, int64_t k) {
  const Tensor pred = argmax(logits, 1);
  const int64_t* p = pred.data<int64_t>();
  const int64_t* t = y.data<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    correct += p[i] == t[i];
    if (confusion && p[i] < k) ++(*confusion)[static_cast<size_t>(t[i] * k + p[i])];
  }
  return correct;
}

struct Evaluation {
  double loss = 0, accuracy = 0;
  std::vector<int64_t> confusion;  // (K, K), rows true classes
};

// The whole test set in evaluation mode (running BatchNorm statistics, no drop-path), with the
// training criterion so that the two loss curves are comparable.
Evaluation evaluate(models::MaxVit& model, const data::Dataset& test, int64_t batch, DType dt, double smoothing) {
  const auto k = static_cast<int64_t>(test.classes().size());
  Evaluation ev;
  ev.confusion.assign(static_cast<size_t>(k * k), 0);
  data::LoaderOptions o;
  o.batch_size = batch, o.shuffle = false, o.drop_last = false, o.augment = false;
  data::DataLoader loader(test, o);
  loader.start_epoch(0);
  model.eval();
  NoGradGuard no_grad;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  for (data::Batch b; loader.next(b);) {
    const Tensor y = labels_of(b);
    const Tensor logits = model(images_of(b, dt));
    loss_sum += cross_entropy(logits, y, smoothing).item() * static_cast<double>(b.n);
    correct += correct_count(logits, y, &ev.confusion, k);
    seen += b.n;
  }
  model.train();
  ev.loss = loss_sum / static_cast<double>(std::max<int64_t>(1, seen));
  ev.accuracy = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, seen));
  return ev;
}

std::string recipe_text(const cli::Recipe& r, const models::MaxVitConfig& c) {
  return cat("AdamW (lr ", r.lr, ", betas 0.9/0.999, eps 1e-8, weight decay ", r.weight_decay,
             " on all parameters), batch ", r.batch, " (last partial batch dropped), linear warm-up ", r.warmup_epochs,
             " epoch(s) from lr/steps_per_epoch then cosine to 0 per step, label smoothing ", r.label_smoothing,
             ", random crop 32 from 4-pixel zero padding + horizontal flip per image, CIFAR-10 "
             "mean/std normalisation, stochastic depth ",
             c.stochastic_depth, ", BatchNorm eps ", c.bn.eps, " momentum ", c.bn.momentum.value_or(-1), ", ", r.epochs,
             " epochs");
}

// Running sums of the epoch in progress: saved mid-epoch so a resumed epoch reports the same numbers.
struct EpochSums {
  double loss = 0;  // sum over images of the batch-mean loss
  int64_t correct = 0, seen = 0;
  Tensor tensor() const {
    return Tensor::from_vector({loss, static_cast<double>(correct), static_cast<double>(seen)}, {3}, DType::Float64);
  }
};

const Tensor* find_extra(const nn::CheckpointInfo& info, const std::string& name) {
  for (const auto& [n, t] : info.extra)
    if (n == name) return &t;
  return nullptr;
}

int run(int argc, char** argv) {
  cli::TrainFlags tf;
  cli::Flags flags("train_cifar", cli::TrainFlags::kSynopsis);
  tf.add_to(flags);
  flags.parse_or_exit(argc, argv);
  const std::vector<std::string> args(argv + 1, argv + argc);

  const std::string out = tf.out_dir();
  const std::string last = (fs::path(out) / "last.safetensors").string();
  const std::string prev = (fs::path(out) / "prev.safetensors").string();
  std::unique_ptr<nn::Checkpoint> ck;
  models::MaxVitConfig cfg;
  try {
    if (tf.resume) {
      if (!fs::exists(last)) throw cli::UsageError("--resume: there is no checkpoint " + last + " to continue from");
      ck = std::make_unique<nn::Checkpoint>(nn::read_checkpoint(last));
      auto saved = ck->info.metadata.find("config");
      MG_CHECK(saved != ck->info.metadata.end(), "checkpoint " + last, "has no 'config' metadata");
      tf = cli::merge_for_resume(saved->second, args, last);
      // The data comes from where it came from before, unless the command line says otherwise.
      auto source = ck->info.metadata.find("data_dir");
      if (!tf.data && !tf.synthetic && source != ck->info.metadata.end()) {
        if (source->second.empty())
          tf.synthetic = true;
        else
          tf.data = source->second;
      }
    }
    cfg = tf.model_config();
  } catch (const cli::UsageError& e) {
    std::cerr << "train_cifar: " << e.what() << "\n\n" << flags.usage();
    return kExitUsage;
  }
  const cli::Recipe r = tf.recipe();
  const DType dt = tf.model.tensor_dtype();
  tf.model.apply_threads();

  cli::TrainData data = cli::load_train_data(tf.data, tf.synthetic, r.subset, r.eval_subset, std::cerr);
  const std::string data_kind = data.synthetic ? "synthetic" : "cifar10";
  const std::vector<std::string>& classes = data.train.classes();
  const int64_t steps_per_epoch = data.train.size() / r.batch;
  if (steps_per_epoch == 0) {
    std::cerr << "train_cifar: the training set (" << data.train.size()
              << " images) is smaller than one batch (--batch " << r.batch << ")\n";
    return kExitUsage;
  }
  if (static_cast<size_t>(cfg.num_classes) < classes.size()) {
    std::cerr << "train_cifar: --num-classes " << cfg.num_classes << " is fewer than the data's " << classes.size()
              << " classes\n";
    return kExitUsage;
  }
  if (ck) {
    const auto& m = ck->info.metadata;
    auto kind = m.find("data");
    auto size = m.find("train_size");
    if (kind == m.end() || kind->second != data_kind || size == m.end() ||
        size->second != std::to_string(data.train.size())) {
      std::cerr << "train_cifar: --resume: " << last << " was trained on " << (kind == m.end() ? "?" : kind->second)
                << " data of " << (size == m.end() ? "?" : size->second) << " images, but this run found "
                << data.description << " with " << data.train.size() << " training images\n";
      return kExitUsage;
    }
  }
  const int64_t total_steps = r.epochs * steps_per_epoch;
  const auto warmup_steps = static_cast<int64_t>(std::llround(r.warmup_epochs * static_cast<double>(steps_per_epoch)));
  const std::string tag = data.synthetic ? "  [synthetic data, not CIFAR-10]" : "";

  models::MaxVit model(cfg, static_cast<uint64_t>(r.seed));
  model.to(dt);
  nn::AdamW opt(model.parameters(), r.lr, 0.9, 0.999, 1e-8, r.weight_decay);
  const nn::GeneratorRefs rngs = {{"drop_path", model.drop_gen.get()}};

  nn::CheckpointInfo pos;  // where the run stands; epoch/batch/step as the checkpoint defines them
  EpochSums sums;
  std::vector<cli::EpochRecord> history;
  if (ck) {
    // The run's own parts of the checkpoint are checked before restore_checkpoint changes anything.
    const std::string who = "checkpoint " + last;
    pos = ck->info;
    const Tensor *h = find_extra(pos, "history"), *hs = find_extra(pos, "history_seconds"),
                 *s = find_extra(pos, "epoch_sums");
    MG_CHECK(h && hs && s && s->numel() == 3, who, "lacks the training history or the epoch's running sums");
    MG_CHECK(pos.step == pos.epoch * steps_per_epoch + pos.batch && pos.batch < steps_per_epoch, who, "position epoch ",
             pos.epoch, ", batch ", pos.batch, ", step ", pos.step, " does not fit ", steps_per_epoch,
             " steps per epoch");
    history = cli::history_from(*h, *hs);
    MG_CHECK(static_cast<int64_t>(history.size()) == pos.epoch, who, "holds the history of ", history.size(),
             " epochs but is at epoch ", pos.epoch);
    const std::vector<double> v = s->to_vector();
    sums.loss = v[0], sums.correct = static_cast<int64_t>(v[1]), sums.seen = static_cast<int64_t>(v[2]);
    nn::restore_checkpoint(*ck, model, &opt, rngs);  // checks everything first; the error names the file
    ck.reset();
  }
  fs::create_directories(out);

  auto save = [&](double epoch_seconds) {
    nn::CheckpointInfo info = pos;
    info.data_seed = static_cast<uint64_t>(r.seed);
    info.metadata = {{"config", cli::join(tf.canonical_args(), " ")},
                     {"recipe", recipe_text(r, cfg)},
                     {"data", data_kind},
                     {"data_dir", data.dir},
                     {"train_size", std::to_string(data.train.size())},
                     {"classes", cli::join(classes, ",")},
                     {"normalize_mean", "0.4914,0.4822,0.4465"},
                     {"normalize_std", "0.2470,0.2435,0.2616"}};
    info.extra = {{"history", cli::history_tensor(history)},
                  {"history_seconds", cli::history_seconds(history)},
                  {"epoch_sums", sums.tensor()},
                  {"epoch_seconds", Tensor::scalar(epoch_seconds, DType::Float64)}};
    nn::save_checkpoint(last, model, &opt, rngs, info, prev);
  };

  std::cout << "train_cifar: MaxViT (" << tf.model.preset.value_or("cifar") << " preset, " << model.num_parameters()
            << " parameters, " << model.flops_per_image() / 1e9 << " GFLOP/image forward) on " << data.description
            << ": " << data.train.size() << " training / " << data.test.size() << " test images, " << steps_per_epoch
            << " steps per epoch, " << get_num_threads() << " threads"
            << (pos.step ? cat(", resuming at epoch ", pos.epoch + 1, " step ", pos.step) : "") << "\n"
            << "recipe: " << recipe_text(r, cfg) << "\n"
            << std::flush;

  data::LoaderOptions lo;
  lo.batch_size = r.batch, lo.shuffle = true, lo.drop_last = true, lo.seed = static_cast<uint64_t>(r.seed);
  lo.augment = true;
  data::DataLoader loader(data.train, lo);
  cli::ProgressBar bar;
  Evaluation last_eval;
  bool evaluated = false;
  const int64_t max_steps = tf.max_steps.value_or(total_steps);
  double epoch_seconds = 0;
  if (const Tensor* t = find_extra(pos, "epoch_seconds")) epoch_seconds = t->item();
  bool unsaved = false;  // steps done since the last checkpoint
  if (pos.epoch >= r.epochs) std::cout << "the checkpoint's run is already complete (" << r.epochs << " epochs)\n";
  model.train();

  while (pos.epoch < r.epochs) {
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] {
      return epoch_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    loader.start_epoch(pos.epoch, pos.batch);
    bar.start(pos.epoch + 1, r.epochs, steps_per_epoch, pos.batch);
    int64_t images = 0;
    double lr = 0;
    for (data::Batch b; pos.batch < steps_per_epoch;) {
      if (pos.step >= max_steps) {  // --max-steps: stop here, resumable
        bar.finish();
        if (unsaved) save(seconds());
        std::cout << "stopped after step " << pos.step << " (--max-steps) in epoch " << pos.epoch + 1
                  << "; continue with --resume --out " << out << "\n";
        return 0;
      }
      MG_CHECK(loader.next(b), "train_cifar", "the loader ended before batch ", pos.batch);
      lr = opt.lr = nn::warmup_cosine_lr(r.lr, pos.step, warmup_steps, total_steps);
      const Tensor y = labels_of(b);
      opt.zero_grad();
      const Tensor logits = model(images_of(b, dt));
      const Tensor loss = cross_entropy(logits, y, r.label_smoothing);
      double loss_value = loss.item();
      if (tf.nan_at_step && pos.step + 1 == *tf.nan_at_step) loss_value = std::nan("");
      if (!std::isfinite(loss_value)) {  // stop before the update: the last checkpoint stays the good one
        bar.finish();
        std::cerr << "train_cifar: the loss is " << loss_value << " at step " << pos.step + 1 << " (epoch "
                  << pos.epoch + 1 << ", batch " << pos.batch + 1 << " of " << steps_per_epoch << "); stopping. "
                  << (fs::exists(last) ? "The last good checkpoint, " + last +
                                             ", is kept (resume from it with a "
                                             "lower --lr, or look at the data)."
                                       : std::string("No checkpoint had been written yet."))
                  << "\n";
        return kExitNaN;
      }
      loss.backward();
      opt.step();
      ++pos.step, ++pos.batch;
      unsaved = true;
      sums.loss += loss_value * static_cast<double>(b.n);
      sums.correct += correct_count(logits, y, nullptr, 0);
      sums.seen += b.n;
      images += b.n;
      bar.update(pos.batch, sums.loss / static_cast<double>(sums.seen),
                 static_cast<double>(sums.correct) / static_cast<double>(sums.seen), images);
    }
    bar.note("evaluating on " + std::to_string(data.test.size()) + " test images ...");
    last_eval = evaluate(model, data.test, r.batch, dt, r.label_smoothing);
    evaluated = true;
    bar.finish();
    cli::EpochRecord rec{pos.epoch + 1,
                         pos.step,
                         lr,
                         sums.loss / static_cast<double>(sums.seen),
                         static_cast<double>(sums.correct) / static_cast<double>(sums.seen),
                         last_eval.loss,
                         last_eval.accuracy,
                         seconds()};
    history.push_back(rec);
    ++pos.epoch, pos.batch = 0, sums = EpochSums{}, epoch_seconds = 0;
    std::cout << cli::summary_line(rec, r.epochs) << tag << "\n" << std::flush;
    cli::write_log_csv((fs::path(out) / "log.csv").string(), history);
    cli::write_curves((fs::path(out) / "curves.png").string(), history);
    save(0);
    unsaved = false;
  }

  if (evaluated) std::cout << "\n" << cli::confusion_table(last_eval.confusion, classes);
  if (!history.empty())
    std::cout << "\ndone: " << history.size() << " epochs, test accuracy " << 100 * history.back().test_acc << "%"
              << tag << "\n  checkpoint " << last << "\n  log        " << (fs::path(out) / "log.csv").string()
              << "\n  curves     " << (fs::path(out) / "curves.png").string() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  select_blas_kernels(argc, argv);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "train_cifar: " << e.what() << "\n";
    return kExitError;
  }
}
