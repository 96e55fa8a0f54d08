// train_cifar: trains a MaxViT on CIFAR-10 with the reference recipe (shared/refs.md): AdamW, one
// warm-up epoch then cosine decay per step, label smoothing, crop + flip augmentation, stochastic
// depth. Flags: `train_cifar --help`; the model flags are shared/spec/cli.md's.
//
//   train_cifar --data data/cifar10 --out runs/cifar            # the reference run, 12 epochs
//   train_cifar --subset 100 --epochs 2 --out /tmp/quick        # a quick look (synthetic without data)
//   train_cifar --out runs/cifar --resume                       # go on after an interruption
//   mpirun -np 4 train_cifar --sync-bn --out runs/cifar         # 4 processes, one global batch
//
// A resumed run ends bitwise where an uninterrupted one would: the data order and augmentation are
// functions of (seed, epoch, image), and the checkpoint carries the weights, AdamW's moments, the
// drop-path generator, the schedule position (epoch, batch, step) and the epoch's running sums.
//
// Under mpirun each rank trains on its share of every global batch of --batch images, the gradients
// are averaged over the ranks (nn/dist/data_parallel.h) and only rank 0 prints, logs and saves; --sync-bn
// makes BatchNorm's statistics those of the global batch (nn/dist/sync_batchnorm.h). docs/distributed.md.
//
// --resume goes on from OUT/last.safetensors or, when its checksums show it damaged, from
// OUT/prev.safetensors, the checkpoint before it; the damaged file is set aside, never deleted.
//
// Exit status: 0 done (or stopped by --max-steps), 1 an error (data, files), 2 a usage error or a
// damaged checkpoint (both last and prev, on --resume), 3 the loss became NaN or infinite (the last good checkpoint is
// kept). Under mpirun an error on any rank ends every rank (MPI_Abort) with its status.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "examples/common/checkpoint_config.h"
#include "examples/common/progress.h"
#include "examples/common/train_data.h"
#include "examples/common/train_flags.h"
#include "examples/common/train_report.h"
#include "maxgrad/core/runtime/blas_select.h"
#include "maxgrad/core/runtime/isa.h"
#include "maxgrad/core/runtime/parallel.h"
#include "maxgrad/data/loader.h"
#include "maxgrad/nn/dist/data_parallel.h"
#include "maxgrad/nn/dist/sync_batchnorm.h"
#include "maxgrad/nn/ema.h"
#include "maxgrad/nn/precise_bn.h"
#include "maxgrad/nn/serialize/checkpoint.h"
#include "maxgrad/nn/serialize/serialize.h"

using namespace mg;
namespace fs = std::filesystem;

namespace {

constexpr int kExitError = 1, kExitUsage = 2, kExitNaN = 3;

// The run's process group, once made: main() ends every rank through it when one rank fails.
std::shared_ptr<dist::ProcessGroup> g_group;

// (N, C, H, W) float32 from the loader, in the run's dtype; labels (N) int64.
Tensor images_of(const data::Batch& b, DType dt) {
  Tensor x = Tensor::empty({b.n, b.c, b.h, b.w}, DType::Float32);
  std::memcpy(x.data<float>(), b.x.data(), b.x.size() * sizeof(float));
  return dt == DType::Float32 ? x : x.to(dt);
}
Tensor labels_of(const data::Batch& b) { return Tensor::from_vector_i64(b.y, {b.n}); }

// The batch with every image mirrored left to right: x(n, c, y, w - 1 - x).
data::Batch mirrored(const data::Batch& b) {
  data::Batch m = b;
  for (int64_t row = 0; row < b.n * b.c * b.h; ++row)
    std::reverse(m.x.begin() + row * b.w, m.x.begin() + (row + 1) * b.w);
  return m;
}

// What the training loader does to each image (random crop and flip, the recipe's augmentation
// policy and erasing), for the training loop and for the precise BatchNorm statistics alike; and,
// for the training loop only, mixup and CutMix of whole batches (see precise_bn_stats).
data::LoaderOptions training_augmentation(const cli::Recipe& r) {
  data::LoaderOptions o;
  o.augment = true;
  o.pad = r.crop_padding;
  o.auto_augment = r.auto_augment == "ta_wide" ? data::AutoAugment::trivial_augment_wide
                   : r.auto_augment == "ra"    ? data::AutoAugment::rand_augment
                                               : data::AutoAugment::none;
  o.rand_augment_magnitude = r.ra_magnitude;
  o.erasing_prob = r.random_erase;
  return o;
}

data::MixupOptions training_mix(const cli::Recipe& r, int64_t num_classes) {
  data::MixupOptions m;
  m.mixup_alpha = r.mixup_alpha, m.cutmix_alpha = r.cutmix_alpha;
  m.label_smoothing = r.label_smoothing, m.num_classes = num_classes;
  return m;
}

// A batch's target probabilities (N, K), when it was mixed.
Tensor targets_of(const data::Batch& b, DType dt) {
  Tensor t = Tensor::empty({b.n, b.num_classes}, DType::Float32);
  std::memcpy(t.data<float>(), b.targets.data(), b.targets.size() * sizeof(float));
  return dt == DType::Float32 ? t : t.to(dt);
}

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
// training criterion so that the two loss curves are comparable. Each rank evaluates its share of
// every batch; the sums are added over the ranks, so every rank returns the whole set's numbers.
Evaluation evaluate(models::MaxVit& model, const data::Dataset& test, int64_t batch, DType dt, double smoothing,
                    dist::ProcessGroup& group, bool flip = false) {
  const auto k = static_cast<int64_t>(test.classes().size());
  Evaluation ev;
  ev.confusion.assign(static_cast<size_t>(k * k), 0);
  data::LoaderOptions o;
  o.batch_size = batch, o.shuffle = false, o.drop_last = false, o.augment = false;
  o.num_shards = group.size(), o.shard = group.rank();
  data::DataLoader loader(test, o);
  loader.start_epoch(0);
  model.eval();
  NoGradGuard no_grad;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  for (data::Batch b; loader.next(b);) {
    if (b.n == 0) continue;  // a last batch smaller than the number of ranks
    const Tensor y = labels_of(b);
    Tensor logits = model(images_of(b, dt));
    if (flip) logits = (logits + model(images_of(mirrored(b), dt))) * 0.5;  // test-time augmentation
    loss_sum += cross_entropy(logits, y, smoothing).item() * static_cast<double>(b.n);
    correct += correct_count(logits, y, &ev.confusion, k);
    seen += b.n;
  }
  model.train();
  std::vector<double> totals{loss_sum, static_cast<double>(correct), static_cast<double>(seen)};
  totals.insert(totals.end(), ev.confusion.begin(), ev.confusion.end());
  group.allreduce_sum(totals.data(), static_cast<int64_t>(totals.size()));  // exact: counts below 2^53
  loss_sum = totals[0], correct = static_cast<int64_t>(totals[1]), seen = static_cast<int64_t>(totals[2]);
  for (size_t i = 0; i < ev.confusion.size(); ++i) ev.confusion[i] = static_cast<int64_t>(totals[3 + i]);
  ev.loss = loss_sum / static_cast<double>(std::max<int64_t>(1, seen));
  ev.accuracy = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, seen));
  return ev;
}

// Precise BatchNorm statistics of the current weights (nn/precise_bn.h) over --precise-bn training
// images, a fixed random sample (the same every epoch) augmented as in training; each rank runs its
// share of every batch, and the statistics pool all ranks' values.
std::vector<nn::BnPopulation> precise_bn_stats(models::MaxVit& model, const data::Dataset& train, const cli::Recipe& r,
                                               DType dt, dist::ProcessGroup& group) {
  const int64_t images = std::min(r.precise_bn, train.size()), batch = std::min(r.batch, images);
  const auto seed = static_cast<uint64_t>(r.seed);
  // Augmented as in training, as pycls does: the weights were fitted to BatchNorm statistics of
  // augmented images, and statistics of plain ones (no black borders from the padded crops, ...)
  // shift every layer's input away from them (80.2% test accuracy with the running statistics after
  // 12 reference epochs, 75.5% with precise ones of plain images, 80.1% of augmented ones). Images
  // are not blended here (mixup, CutMix): evaluation never sees a blend.
  data::LoaderOptions o = training_augmentation(r);
  o.batch_size = batch, o.shuffle = true, o.drop_last = true;
  o.seed = seed ^ 0x9b05688c2b3e6c1fULL;  // not the training order's stream
  o.num_shards = group.size(), o.shard = group.rank();
  data::DataLoader loader(train, o);
  loader.start_epoch(0);
  data::Batch b;
  return nn::bn_population_stats(
      model, images / batch,
      [&](int64_t i) {
        MG_CHECK(loader.next(b), "train_cifar", "precise BatchNorm: the loader ended before batch ", i);
        model(images_of(b, dt));
      },
      group.size() > 1 ? g_group : nullptr);
}

// While alive, every BatchNorm of the model holds the given statistics; the running ones come back
// after (bitwise: training goes on exactly as without).
class BnStatsSwap {
 public:
  explicit BnStatsSwap(const std::vector<nn::BnPopulation>& pop) {
    NoGradGuard no_grad;
    for (const nn::BnPopulation& p : pop) {
      nn::BatchNorm2d& bn = *p.layer;
      const int64_t c = static_cast<int64_t>(p.mean.size());
      saved_.push_back({&bn, bn.running_mean.clone(), bn.running_var.clone()});
      bn.running_mean.copy_(Tensor::from_vector(p.mean, {c}, bn.running_mean.dtype()));
      bn.running_var.copy_(Tensor::from_vector(p.var, {c}, bn.running_var.dtype()));
    }
  }
  ~BnStatsSwap() {
    NoGradGuard no_grad;
    for (auto& s : saved_) s.bn->running_mean.copy_(s.mean), s.bn->running_var.copy_(s.var);
  }
  BnStatsSwap(const BnStatsSwap&) = delete;
  BnStatsSwap& operator=(const BnStatsSwap&) = delete;

 private:
  struct Saved {
    nn::BatchNorm2d* bn;
    Tensor mean, var;
  };
  std::vector<Saved> saved_;
};

std::string recipe_text(const cli::Recipe& r, const models::MaxVitConfig& c) {
  std::string augment =
      cat("random crop ", c.input_h, " from ", r.crop_padding, "-pixel zero padding + horizontal flip per image");
  if (r.auto_augment == "ta_wide") augment += ", TrivialAugmentWide";
  if (r.auto_augment == "ra") augment += cat(", RandAugment (2 ops, magnitude ", r.ra_magnitude, ")");
  if (r.random_erase > 0) augment += cat(", random erasing p ", r.random_erase);
  if (r.mixup_alpha > 0) augment += cat(", mixup alpha ", r.mixup_alpha);
  if (r.cutmix_alpha > 0) augment += cat(r.mixup_alpha > 0 ? " or" : ",", " CutMix alpha ", r.cutmix_alpha);
  std::string text =
      cat(r.name, " recipe: AdamW (lr ", r.lr, ", betas 0.9/0.999, eps 1e-8, weight decay ", r.weight_decay,
          r.norm_bias_decay ? " on all parameters" : " except on biases, norms and position-bias tables", "), batch ",
          r.batch, " (last partial batch dropped), linear warm-up ", r.warmup_epochs,
          " epoch(s) from lr/steps_per_epoch then cosine to 0 per step, label smoothing ", r.label_smoothing, ", ",
          augment, ", CIFAR-10 mean/std normalisation, stochastic depth ", c.stochastic_depth, ", BatchNorm eps ",
          c.bn.eps(), " momentum ", c.bn.momentum().value_or(-1), ", ", r.epochs, " epochs");
  if (r.model_ema_decay > 0)
    text += cat(", weight average (EMA) decay ", r.model_ema_decay, r.model_ema_warmup ? " with warm-up" : "");
  if (r.tta != "none") text += cat(", test-time augmentation ", r.tta);
  if (r.eval_every > 1) text += cat(", evaluated every ", r.eval_every, " epochs and after the last");
  if (r.val_split > 0) text += cat(", ", r.val_split, " images per class held out for validation");
  return text;
}

// Running sums of the epoch in progress: saved mid-epoch so a resumed epoch reports the same numbers.
struct EpochSums {
  double loss = 0;  // sum over images of the batch-mean loss
  int64_t correct = 0, seen = 0;
  Tensor tensor() const {
    return Tensor::from_vector({loss, static_cast<double>(correct), static_cast<double>(seen)}, {3}, DType::Float64);
  }
};

const Tensor* find_extra(const serialize::CheckpointInfo& info, const std::string& name) {
  for (const auto& [n, t] : info.extra)
    if (n == name) return &t;
  return nullptr;
}

// The first free OUT/last.safetensors.damaged-N: a damaged checkpoint is renamed there, never over an
// earlier one (link() refuses an existing name), so the next save cannot keep it as prev.safetensors.
std::string set_aside(const std::string& path) {
  for (int n = 1;; ++n) {
    const std::string aside = cat(path, ".damaged-", n);
    if (::link(path.c_str(), aside.c_str()) == 0) {
      MG_CHECK(std::remove(path.c_str()) == 0, "train_cifar", "cannot remove ", path, " after keeping it as ", aside);
      return aside;
    }
    if (errno == EEXIST) continue;
    MG_CHECK(!fs::exists(aside) && std::rename(path.c_str(), aside.c_str()) == 0, "train_cifar", "cannot set ", path,
             " aside as ", aside, ": ", std::strerror(errno));
    return aside;
  }
}

// --resume's checkpoint: `last`, or `prev` when last is damaged (its checksums fail). Only then is last
// set aside (by rank 0); when prev cannot be read either, both are left as they are and the error
// names both.
serialize::Checkpoint read_for_resume(const std::string& last, const std::string& prev, bool rank0) {
  try {
    return serialize::read_checkpoint(last);
  } catch (const safetensors::ChecksumError& damaged) {
    serialize::Checkpoint ck;
    try {
      if (!fs::exists(prev)) throw Error(cat("there is no ", prev, " to go on from instead"));
      ck = serialize::read_checkpoint(prev);
    } catch (const std::exception& also) {
      throw safetensors::ChecksumError(cat("--resume: ", damaged.what(), "\n  and ", also.what(),
                                           "\n  so there is no checkpoint to resume from; neither file was changed"),
                                       damaged.tensors);
    }
    std::cerr << "train_cifar: --resume: " << damaged.what() << "\n";
    if (rank0) std::cerr << "train_cifar: --resume: the damaged file is set aside as " << set_aside(last) << "\n";
    std::cerr << "train_cifar: --resume: going on from " << prev << " instead (epoch " << ck.info.epoch + 1 << ", step "
              << ck.info.step << ")\n";
    return ck;
  }
}

// Under mpirun every rank runs this program: ranks other than 0 print nothing on stdout, and
// explain a bad command line (which every rank has, the same) only through rank 0.
struct QuietRank {
  std::streambuf* cerr_buf = nullptr;
  explicit QuietRank(bool quiet) {
    if (!quiet) return;
    std::cout.rdbuf(nullptr);  // writes to a stream without a buffer are dropped
    cerr_buf = std::cerr.rdbuf(nullptr);
  }
  void restore_stderr() {
    if (!cerr_buf) return;
    std::cerr.rdbuf(cerr_buf);
    std::cerr.clear();
  }
};

int run(int argc, char** argv) {
  cli::TrainFlags tf;
  cli::Flags flags("train_cifar", cli::TrainFlags::kSynopsis);
  tf.add_to(flags);
  const dist::LaunchInfo launch = dist::launch_info();
  QuietRank quiet(launch.rank != 0);
  flags.parse_or_exit(argc, argv);
  const std::vector<std::string> args(argv + 1, argv + argc);

  const std::string out = tf.out_dir();
  const std::string last = (fs::path(out) / "last.safetensors").string();
  const std::string prev = (fs::path(out) / "prev.safetensors").string();
  std::unique_ptr<serialize::Checkpoint> ck;
  std::string resumed;  // the checkpoint --resume read: last, or prev if last was damaged
  models::MaxVitConfig cfg;
  try {
    if (tf.resume) {
      if (!fs::exists(last)) throw cli::UsageError("--resume: there is no checkpoint " + last + " to continue from");
      ck = std::make_unique<serialize::Checkpoint>(read_for_resume(last, prev, launch.rank == 0));
      resumed = ck->path;
      auto saved = ck->info.metadata.find("config");
      MG_CHECK(saved != ck->info.metadata.end(), "checkpoint " + resumed, "has no 'config' metadata");
      tf = cli::merge_for_resume(saved->second, args, resumed);
      // The data is found as for any run (--data, $MAXGRAD_DATA, ./data/cifar10): a file never
      // decides what is read. Only its kind is taken from the checkpoint (synthetic or CIFAR-10), and
      // the data found must be what the checkpoint was trained on (checked below).
      auto kind = ck->info.metadata.find("data");
      if (!tf.data && !tf.synthetic && kind != ck->info.metadata.end() && kind->second == "synthetic")
        tf.synthetic = true;
    }
    cfg = tf.model_config();
    if (ck) cli::check_config_fits(cfg, *ck);  // before the model is built from it
    if (tf.recipe().batch % launch.world_size != 0)
      throw cli::UsageError(cat("--batch ", tf.recipe().batch, " does not split over ", launch.world_size,
                                " ranks: each rank takes an equal share of every global batch of --batch images, so "
                                "--batch must be a multiple of the number of ranks"));
  } catch (const cli::UsageError& e) {
    std::cerr << "train_cifar: " << e.what() << "\n\n" << flags.usage();
    return kExitUsage;
  } catch (const Error& e) {  // the checkpoint to resume from is malformed (shared/spec/cli.md: exit 2)
    std::cerr << "train_cifar: " << e.what() << "\n";
    return kExitUsage;
  }
  quiet.restore_stderr();  // from here on, an error on any rank is reported by that rank
  const cli::Recipe r = tf.recipe();
  const DType dt = tf.model.tensor_dtype();

  // One process, or one rank of several (mpirun): MPI is started here, after the command line.
  g_group = dist::init_process_group();
  dist::ProcessGroup& group = *g_group;
  const int ranks = group.size();
  const bool rank0 = group.rank() == 0;
  if (ranks > 1 && !tf.model.threads)  // the machine's cores shared out between its ranks
    set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / launch.local_size));
  else
    tf.model.apply_threads();
  std::ostringstream discarded;  // what the other ranks would print again

  cli::TrainData data = cli::load_train_data(tf.data, tf.synthetic, r.subset, r.eval_subset, r.val_split,
                                             rank0 ? static_cast<std::ostream&>(std::cerr) : discarded);
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
      std::cerr << "train_cifar: --resume: " << resumed << " was trained on "
                << (kind == m.end() ? "?" : printable(kind->second)) << " data of "
                << (size == m.end() ? "?" : printable(size->second)) << " images, but this run found "
                << data.description << " with " << data.train.size() << " training images";
      if (auto dir = m.find("data_dir"); dir != m.end() && !dir->second.empty())
        std::cerr << " (it was trained on the data in " << printable(dir->second) << ": pass --data with it)";
      std::cerr << "\n";
      return kExitUsage;
    }
  }
  const int64_t total_steps = r.epochs * steps_per_epoch;
  const auto warmup_steps = static_cast<int64_t>(std::llround(r.warmup_epochs * static_cast<double>(steps_per_epoch)));
  const std::string tag = data.synthetic ? "  [synthetic data, not CIFAR-10]" : "";

  models::MaxVit model(cfg, static_cast<uint64_t>(r.seed));
  model.to(dt);
  // --norm-bias-decay off: timm's exclusion of biases, norm weights and position-bias tables.
  optim::AdamW opt(model.parameters(),
                   optim::AdamWOptions(r.lr).betas({0.9, 0.999}).eps(1e-8).weight_decay(r.weight_decay),
                   r.norm_bias_decay ? std::vector<bool>{} : optim::decay_mask(model.named_parameters()));
  const serialize::GeneratorRefs rngs = {{"drop_path", model.drop_gen.get()}};

  serialize::CheckpointInfo pos;  // where the run stands; epoch/batch/step as the checkpoint defines them
  EpochSums sums;
  std::vector<cli::EpochRecord> history;
  if (ck) {
    // The run's own parts of the checkpoint are checked before restore_checkpoint changes anything.
    const std::string who = "checkpoint " + resumed;
    pos = ck->info;
    const Tensor *h = find_extra(pos, "history"), *hs = find_extra(pos, "history_seconds"),
                 *s = find_extra(pos, "epoch_sums");
    MG_CHECK(h && hs && s && s->numel() == 3, who, "lacks the training history or the epoch's running sums");
    // pos.epoch is checked first: epoch * steps_per_epoch of a hostile epoch near 2^62 would overflow.
    MG_CHECK(
        pos.epoch <= r.epochs && pos.step == pos.epoch * steps_per_epoch + pos.batch && pos.batch < steps_per_epoch,
        who, "position epoch ", pos.epoch, ", batch ", pos.batch, ", step ", pos.step, " does not fit ",
        steps_per_epoch, " steps per epoch");
    history = cli::history_from(*h, *hs);
    MG_CHECK(static_cast<int64_t>(history.size()) == pos.epoch, who, "holds the history of ", history.size(),
             " epochs but is at epoch ", pos.epoch);
    const std::vector<double> v = s->to_vector();
    auto count = [](double x) { return x >= 0 && x <= 0x1p53 && x == std::floor(x); };  // NaN fails too
    MG_CHECK(std::isfinite(v[0]) && count(v[1]) && count(v[2]) && v[1] <= v[2], who,
             "holds impossible running sums of the epoch (loss ", v[0], ", correct ", v[1], ", seen ", v[2], ")");
    sums.loss = v[0], sums.correct = static_cast<int64_t>(v[1]), sums.seen = static_cast<int64_t>(v[2]);
    serialize::restore_checkpoint(*ck, model, &opt, rngs);  // checks everything first; the error names the file
    const auto& m = ck->info.metadata;
    const auto was_ranks = m.find("ranks"), was_sync = m.find("sync_bn");
    if (was_ranks != m.end() && was_sync != m.end() &&
        (was_ranks->second != std::to_string(ranks) || (was_sync->second == "1") != tf.sync_bn))
      std::cout << "note: " << resumed << " was trained with " << printable(was_ranks->second) << " rank(s)"
                << (was_sync->second == "1" ? " and --sync-bn" : "") << "; this run goes on with " << ranks
                << " rank(s)" << (tf.sync_bn ? " and --sync-bn" : "") << "\n";
    ck.reset();
  }
  // --model-ema-decay: the averaged weights, warmed up with timm's power 3/4 for runs of thousands
  // of steps (the decay reaches 0.999 at 10K steps), kept in the checkpoint as extra "ema.*".
  std::unique_ptr<nn::ModelEma> ema;
  if (r.model_ema_decay > 0) {
    ema = std::make_unique<nn::ModelEma>(
        model, nn::ModelEmaOptions().decay(r.model_ema_decay).use_warmup(r.model_ema_warmup).warmup_power(0.75));
    if (pos.step > 0) ema->load_state(pos.extra);
  }
  // Every rank starts from rank 0's weights (and, resumed, from the same checkpoint); --sync-bn
  // makes every BatchNorm2d a SyncBatchNorm over the ranks.
  if (tf.sync_bn) dist::convert_sync_batchnorm(model, g_group);
  dist::DistributedDataParallel ddp(model, g_group);
  if (rank0) fs::create_directories(out);

  std::vector<nn::BnPopulation> precise;      // the last evaluation's precise statistics, if on
  std::vector<nn::BnPopulation> ema_precise;  // and the averaged weights' (--model-ema-decay)
  int64_t precise_images = 0;
  auto save = [&](double epoch_seconds) {
    serialize::CheckpointInfo info = pos;
    info.data_seed = static_cast<uint64_t>(r.seed);
    info.metadata = {{"config", cli::join(tf.canonical_args(), " ")},
                     {"recipe", recipe_text(r, cfg)},
                     {"data", data_kind},
                     {"data_dir", data.dir},
                     {"train_size", std::to_string(data.train.size())},
                     {"classes", cli::join(classes, ",")},
                     {"normalize_mean", "0.4914,0.4822,0.4465"},
                     {"normalize_std", "0.2470,0.2435,0.2616"},
                     {"ranks", std::to_string(ranks)},
                     {"sync_bn", tf.sync_bn ? "1" : "0"}};
    info.extra = {{"history", cli::history_tensor(history)},
                  {"history_seconds", cli::history_seconds(history)},
                  {"epoch_sums", sums.tensor()},
                  {"epoch_seconds", Tensor::scalar(epoch_seconds, DType::Float64)}};
    // The last evaluation's precise BatchNorm statistics, and which statistics evaluated better
    // (predict uses those); the state_dict keeps the running ones, as trained.
    // The final weights' precise statistics (and the averaged weights'), and which of the
    // evaluated models predict should use: chosen on the held-out images when there are some, as
    // choosing on the test set would tune on it.
    auto stats = [&](const std::vector<nn::BnPopulation>& pop, const std::string& prefix) {
      for (const nn::BnPopulation& p : pop) {
        const int64_t c = static_cast<int64_t>(p.mean.size());
        info.extra.emplace_back(prefix + p.name + ".running_mean", Tensor::from_vector(p.mean, {c}, dt));
        info.extra.emplace_back(prefix + p.name + ".running_var", Tensor::from_vector(p.var, {c}, dt));
      }
    };
    if (!history.empty()) {
      const cli::EpochRecord& h = history.back();
      const bool val = h.has_val();
      const double running = val ? h.val_acc : h.test_acc, precise_acc = val ? h.val_acc_precise : h.test_acc_precise;
      const double ema_acc = val ? h.val_acc_ema : h.test_acc_ema;
      const bool use_precise = !precise.empty() && !std::isnan(precise_acc) && precise_acc >= running;
      const bool use_ema = ema && !std::isnan(ema_acc) && ema_acc >= (use_precise ? precise_acc : running);
      if (!precise.empty() && !std::isnan(precise_acc)) {
        stats(precise, "precise_bn.");
        if (ema) stats(ema_precise, "ema_precise_bn.");
        info.metadata["precise_bn_images"] = std::to_string(precise_images);
      }
      info.metadata["eval_bn"] = (use_ema ? !ema_precise.empty() : use_precise) ? "precise" : "running";
      if (ema) info.metadata["eval_weights"] = use_ema ? "ema" : "model";
    }
    if (ema)
      for (auto& entry : ema->state()) info.extra.push_back(std::move(entry));
    serialize::save_checkpoint(last, model, &opt, rngs, info, prev);
  };

  std::cout << "train_cifar: MaxViT (" << tf.model.preset.value_or("cifar") << " preset, " << model.num_parameters()
            << " parameters, " << model.flops_per_image() / 1e9 << " GFLOP/image forward) on " << data.description
            << ": " << data.train.size() << " training / " << data.test.size() << " test images, " << steps_per_epoch
            << " steps per epoch, "
            << (ranks > 1 ? cat(ranks, " ranks (", group.backend(), ") x ", get_num_threads(), " threads, BatchNorm ",
                                tf.sync_bn ? "statistics over the global batch (--sync-bn)" : "statistics per rank")
                          : cat(get_num_threads(), " threads"))
            << ", kernels " << kernel_isa_description()
            << (pos.step ? cat(", resuming at epoch ", pos.epoch + 1, " step ", pos.step) : "") << "\n"
            << "recipe: " << recipe_text(r, cfg) << "\n"
            << std::flush;

  data::LoaderOptions lo = training_augmentation(r);
  lo.mix = training_mix(r, cfg.num_classes);
  lo.batch_size = r.batch, lo.shuffle = true, lo.drop_last = true, lo.seed = static_cast<uint64_t>(r.seed);
  lo.num_shards = ranks, lo.shard = group.rank();  // this rank's share of every global batch
  data::DataLoader loader(data.train, lo);
  cli::ProgressBar bar;
  // One split's accuracies: running statistics, precise ones, the averaged weights, and the final
  // model with test-time augmentation; the confusion matrix is the last model evaluated's.
  struct Scores {
    double loss = 0, acc = 0, loss_precise = std::nan(""), acc_precise = std::nan(""), acc_ema = std::nan(""),
           acc_tta = std::nan("");
    std::vector<int64_t> confusion;
  };
  auto score = [&](const data::Dataset& set) {
    Scores s;
    const Evaluation plain = evaluate(model, set, r.batch, dt, r.label_smoothing, group);
    s.loss = plain.loss, s.acc = plain.accuracy, s.confusion = plain.confusion;
    if (!precise.empty()) {
      BnStatsSwap stats(precise);
      const Evaluation pe = evaluate(model, set, r.batch, dt, r.label_smoothing, group);
      s.loss_precise = pe.loss, s.acc_precise = pe.accuracy, s.confusion = pe.confusion;
    }
    // The final model: the averaged weights when kept, with precise statistics of their own
    // (ema_precise; their averaged running ones when off), else the weights with theirs.
    std::optional<nn::EmaSwap> weights;
    if (ema) weights.emplace(model, *ema);
    BnStatsSwap stats(ema ? ema_precise : precise);  // no change when precise BatchNorm is off
    if (ema) {
      const Evaluation ee = evaluate(model, set, r.batch, dt, r.label_smoothing, group);
      s.acc_ema = ee.accuracy, s.confusion = ee.confusion;
    }
    if (r.tta == "flip") {
      const Evaluation te = evaluate(model, set, r.batch, dt, r.label_smoothing, group, /*flip=*/true);
      s.acc_tta = te.accuracy, s.confusion = te.confusion;
    }
    return s;
  };
  Scores last_eval;
  bool evaluated = false;
  const int64_t max_steps = tf.max_steps.value_or(total_steps);
  double epoch_seconds = 0;
  if (const Tensor* t = find_extra(pos, "epoch_seconds")) epoch_seconds = t->item();
  bool unsaved = false;                               // steps done since the last checkpoint
  std::optional<std::string> dump_to = tf.dump_step;  // --dump-step: written after this session's first step
  int64_t session_steps = 0, session_images = 0;
  double step_seconds = 0;  // in training steps (loading, forward, backward, update), this session
  double comm_seconds = 0;  // of which inside collectives (all of them: gradients, SyncBatchNorm, ...)
  // Speed and, with several ranks, where the communication time went.
  auto report = [&] {
    if (session_steps == 0) return;
    const double per_step = 1e3 / static_cast<double>(session_steps);
    std::cout << "speed: " << static_cast<double>(session_images) / step_seconds << " images/s over " << session_steps
              << " training steps (" << step_seconds * per_step << " ms/step; evaluation not counted)\n";
    if (ranks > 1)
      std::cout << "distributed: " << ranks << " ranks x " << get_num_threads() << " threads; gradient allreduce "
                << ddp.allreduce_seconds() * per_step << " ms/step in " << ddp.num_buckets()
                << " bucket(s); all collectives (gradients, SyncBatchNorm, metrics, buffers) "
                << comm_seconds * per_step << " ms/step (rank 0's time, waiting for the others included)\n";
  };
  if (pos.epoch >= r.epochs) std::cout << "the checkpoint's run is already complete (" << r.epochs << " epochs)\n";
  model.train();

  while (pos.epoch < r.epochs) {
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] {
      return epoch_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    loader.start_epoch(pos.epoch, pos.batch);
    if (rank0) bar.start(pos.epoch + 1, r.epochs, steps_per_epoch, pos.batch);
    int64_t images = 0;
    double lr = 0;
    for (data::Batch b; pos.batch < steps_per_epoch;) {
      if (pos.step >= max_steps) {  // --max-steps: stop here, resumable
        if (rank0) bar.finish();
        if (unsaved && rank0) save(seconds());
        std::cout << "stopped after step " << pos.step << " (--max-steps) in epoch " << pos.epoch + 1
                  << "; continue with --resume --out " << out << "\n";
        report();
        return 0;
      }
      const auto step_start = std::chrono::steady_clock::now();
      const double comm_before = group.stats().seconds;
      MG_CHECK(loader.next(b), "train_cifar", "the loader ended before batch ", pos.batch);
      lr = opt.lr = optim::warmup_cosine_lr(r.lr, pos.step, warmup_steps, total_steps);
      const Tensor y = labels_of(b);
      opt.zero_grad();
      ddp.sync_buffers();                            // rank 0's BatchNorm statistics everywhere, as DDP
      dist::sync_generator(group, *model.drop_gen);  // and a drop-path stream of each rank's own
      const Tensor logits = model(images_of(b, dt));
      // A mixed batch's targets are probabilities, label smoothing included (timm's SoftTargetCrossEntropy).
      const Tensor loss =
          b.targets.empty() ? cross_entropy(logits, y, r.label_smoothing) : cross_entropy(logits, targets_of(b, dt));
      // The global batch's numbers: [sum of the losses, correct, images] added over the ranks. Every
      // rank sees the same loss, so a NaN stops them all at the same step.
      double batch_sums[3] = {loss.item() * static_cast<double>(b.n),
                              static_cast<double>(correct_count(logits, y, nullptr, 0)), static_cast<double>(b.n)};
      group.allreduce_sum(batch_sums, 3);
      double loss_value = ranks == 1 ? loss.item() : batch_sums[0] / batch_sums[2];
      const auto batch_images = static_cast<int64_t>(batch_sums[2]);
      if (tf.nan_at_step && pos.step + 1 == *tf.nan_at_step) loss_value = std::nan("");
      if (!std::isfinite(loss_value)) {  // stop before the update: the last checkpoint stays the good one
        if (rank0) bar.finish();
        if (rank0)
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
      ddp.average_gradients();  // every rank now holds the global batch's gradient
      nn::NamedTensors dump;
      if (dump_to) {
        dump.emplace_back("loss", Tensor::scalar(loss_value, DType::Float64));
        for (const auto& [name, p] : model.named_parameters())
          if (p.grad().defined()) dump.emplace_back("grad." + name, p.grad().clone());
      }
      opt.step();
      if (dump_to) {
        for (const auto& [name, t] : model.state_dict()) dump.emplace_back("state." + name, t.detach().clone());
        if (rank0) serialize::save_tensors(*dump_to, dump);
        dump_to.reset();
      }
      ++pos.step, ++pos.batch;
      if (ema) ema->update(model, pos.step);
      unsaved = true;
      sums.loss += loss_value * static_cast<double>(batch_images);
      sums.correct += static_cast<int64_t>(batch_sums[1]);
      sums.seen += batch_images;
      images += batch_images;
      ++session_steps, session_images += batch_images;
      step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      comm_seconds += group.stats().seconds - comm_before;
      if (rank0)
        bar.update(pos.batch, sums.loss / static_cast<double>(sums.seen),
                   static_cast<double>(sums.correct) / static_cast<double>(sums.seen), images);
    }
    ddp.sync_buffers();  // every rank evaluates with rank 0's running statistics
    // --eval-every: an epoch in between is not evaluated (nothing of the evaluation feeds training)
    const bool last_epoch = pos.epoch + 1 == r.epochs;
    const bool evaluate_now = (pos.epoch + 1) % r.eval_every == 0 || last_epoch;
    if (!evaluate_now) precise.clear(), ema_precise.clear();
    if (evaluate_now && r.precise_bn > 0) {  // BatchNorm statistics of the current weights, beside the running ones
      if (rank0) bar.note("precise BatchNorm statistics ...");
      precise = precise_bn_stats(model, data.train, r, dt, group);
      const int64_t wanted = std::min(r.precise_bn, data.train.size()), pb = std::min(r.batch, wanted);
      precise_images = wanted / pb * pb;  // whole batches
      if (ema) {
        nn::EmaSwap weights(model, *ema);
        ema_precise = precise_bn_stats(model, data.train, r, dt, group);
      }
    }
    cli::EpochRecord rec{pos.epoch + 1,
                         pos.step,
                         lr,
                         sums.loss / static_cast<double>(sums.seen),
                         static_cast<double>(sums.correct) / static_cast<double>(sums.seen),
                         std::nan(""),
                         std::nan(""),
                         0};
    // An evaluation scores one split: the held-out images with --val-split, else the test set; with
    // --val-split the test set is evaluated once, after the last epoch.
    if (evaluate_now && r.val_split > 0) {
      if (rank0) bar.note("evaluating on " + std::to_string(data.val.size()) + " held-out training images ...");
      const Scores v = score(data.val);
      rec.val_loss = v.loss, rec.val_acc = v.acc, rec.val_loss_precise = v.loss_precise;
      rec.val_acc_precise = v.acc_precise, rec.val_acc_ema = v.acc_ema, rec.val_acc_tta = v.acc_tta;
    }
    if (evaluate_now && (r.val_split == 0 || last_epoch)) {
      if (rank0) bar.note("evaluating on " + std::to_string(data.test.size()) + " test images ...");
      last_eval = score(data.test);
      evaluated = true;
      rec.test_loss = last_eval.loss, rec.test_acc = last_eval.acc, rec.test_loss_precise = last_eval.loss_precise;
      rec.test_acc_precise = last_eval.acc_precise, rec.test_acc_ema = last_eval.acc_ema;
      rec.test_acc_tta = last_eval.acc_tta;
    }
    rec.seconds = seconds();
    if (rank0) bar.finish();
    history.push_back(rec);
    ++pos.epoch, pos.batch = 0, sums = EpochSums{}, epoch_seconds = 0;
    std::cout << cli::summary_line(rec, r.epochs) << tag << "\n" << std::flush;
    if (const std::string note = cli::bn_gap_note(rec, cfg.bn.momentum().value_or(0)); !note.empty() && rank0)
      std::cout << note << "\n";
    if (rank0) {
      cli::write_log_csv((fs::path(out) / "log.csv").string(), history);
      cli::write_curves((fs::path(out) / "curves.png").string(), history);
      save(0);
    }
    unsaved = false;
  }

  if (evaluated) std::cout << "\n" << cli::confusion_table(last_eval.confusion, classes);
  if (!history.empty()) {
    const cli::EpochRecord& h = history.back();
    std::string scores = cat("test accuracy ", 100 * h.test_acc, "% (running BatchNorm statistics)");
    if (!std::isnan(h.test_acc_precise))
      scores +=
          cat(", ", 100 * h.test_acc_precise, "% (precise statistics, over ", precise_images, " training images)");
    if (!std::isnan(h.test_acc_ema)) scores += cat(", ", 100 * h.test_acc_ema, "% (averaged weights)");
    if (!std::isnan(h.test_acc_tta)) scores += cat(", ", 100 * h.test_acc_tta, "% (with flips)");
    std::cout << "\ndone: " << history.size() << " epochs, " << (h.has_test() ? scores : "test set not evaluated")
              << tag << "\n  checkpoint " << last << "\n  log        " << (fs::path(out) / "log.csv").string()
              << "\n  curves     " << (fs::path(out) / "curves.png").string() << "\n";
  }
  report();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  select_blas_kernels(argc, argv);
  int status = kExitError;
  try {
    status = run(argc, argv);
  } catch (const safetensors::ChecksumError& e) {  // a damaged input file (shared/spec/cli.md)
    status = kExitUsage;
    std::cerr << cat("train_cifar: ", e.what(), "\n");
  } catch (const std::exception& e) {
    const std::string who = g_group && g_group->size() > 1 ? cat(" [rank ", g_group->rank(), "]") : "";
    std::cerr << cat("train_cifar", who, ": ", e.what(), "\n");  // one write: ranks share the terminal
  }
  // With several ranks, a failure of one is the end of all: the others may be waiting for it in a
  // collective. A NaN loss is the exception, seen by every rank at the same step (the loss is the
  // global batch's), so they all stop together.
  if (status != 0 && status != kExitNaN && g_group && g_group->size() > 1) g_group->abort(status);
  return status;
}
