#include "examples/common/train_flags.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace mg::cli {

void TrainFlags::add_to(Flags& f) {
  add_config_to(f);
  f.add_int("threads", "worker threads for TBB and OpenBLAS together [all cores]", &model.threads, 1, 1024);
  f.add_string("data",
               "CIFAR-10: binary batches, train/ and test/ folders, or their .tar.gz "
               "[$MAXGRAD_DATA, ./data/cifar10, else synthetic]",
               &data);
  f.add_switch("synthetic", "train on the built-in synthetic 10-class set even when CIFAR-10 is there", &synthetic);
  f.add_string("out", "folder for last.safetensors, prev.safetensors, log.csv, curves.png [runs/cifar]", &out);
  f.add_switch("resume", "continue from OUT/last.safetensors, with its configuration", &resume);
  f.add_int("max-steps", "stop (with a checkpoint) once this many steps are done in all, for tests", &max_steps, 0,
            int64_t{1} << 62);
  f.add_switch("sync-bn",
               "under mpirun: BatchNorm statistics over the whole global batch of all ranks (PyTorch's "
               "SyncBatchNorm); without it each rank normalises over its own share and rank 0's running statistics "
               "are kept",
               &sync_bn);
  f.add_string("dump-step",
               "testing: write the session's first step (loss, gradients averaged over the ranks, state after the "
               "update) to FILE as safetensors",
               &dump_step);
  f.add_int("nan-at-step", "testing: treat the loss of step N (from 1) as NaN, to exercise the NaN stop", &nan_at_step,
            1, int64_t{1} << 62);
}

void TrainFlags::add_config_to(Flags& f) {
  model.add_config_to(f);
  f.add_string("recipe",
               "a training recipe's defaults, each flag below given over them (docs/recipes.md): reference "
               "(PyTorch's reference recipe of shared/refs.md), fast (6 epochs), long (30 epochs) [reference]",
               &recipe_name, {"reference", "fast", "long"});
  f.add_int("epochs", "training epochs [12]", &epochs, 1, 100000);
  f.add_int("batch", "images per step; the last partial batch is dropped [128]", &batch, 1, 1 << 20);
  f.add_double("lr", "peak learning rate of AdamW [2e-3]", &lr, 0.0, 10.0);
  f.add_double("weight-decay", "AdamW's decoupled weight decay, on all parameters [0.05]", &weight_decay, 0.0, 10.0);
  f.add_double("label-smoothing", "cross-entropy label smoothing [0.1]", &label_smoothing, 0.0, 0.99);
  f.add_double("warmup-epochs", "linear warm-up from lr/steps to lr, then cosine to 0 per step [1]", &warmup_epochs,
               0.0, 100000.0);
  f.add_int("seed", "weight init, data order, augmentation and drop-path draws [0]", &seed, 0, (int64_t{1} << 62));
  f.add_int("subset", "train on the first N images of each class; 0 = all [0]", &subset, 0, 1 << 30);
  f.add_int("eval-subset", "evaluate on the first N test images of each class; 0 = all [0]", &eval_subset, 0, 1 << 30);
  f.add_int("eval-every",
            "evaluate (and recompute precise BatchNorm statistics) after every N-th epoch and after the last; "
            "the training itself is the same either way [1]",
            &eval_every, 1, 100000);
  f.add_int("val-split",
            "hold out the last N training images of each class, never trained on; every evaluation is on them "
            "(log.csv's val_* columns) and the test set is evaluated once, at the end; 0 = no split [0]",
            &val_split, 0, 1 << 30);
  f.add_string("norm-bias-decay",
               "weight decay also on biases, norm weights and relative-position-bias tables (off: timm's exclusion) "
               "[on]",
               &norm_bias_decay, {"on", "off"});
  f.add_int("crop-padding",
            "random crop of the input size from the image zero-padded by N pixels a side (torchvision's "
            "RandomCrop padding); 0 = no shift [4]",
            &crop_padding, 0, 64);
  f.add_string("auto-augment", "per-image augmentation policy: TrivialAugmentWide (ta_wide), RandAugment (ra) [none]",
               &auto_augment, {"none", "ta_wide", "ra"});
  f.add_int("ra-magnitude", "RandAugment's magnitude, of 31 bins [9]", &ra_magnitude, 0, 30);
  f.add_double("random-erase", "probability of RandomErasing an area of each image [0]", &random_erase, 0.0, 1.0);
  f.add_double("mixup-alpha", "mixup of image pairs, mixing weight ~ Beta(a, a); 0 = off [0]", &mixup_alpha, 0.0,
               100.0);
  f.add_double("cutmix-alpha", "CutMix of image pairs, area ~ Beta(a, a); 0 = off (with mixup: either, p 0.5) [0]",
               &cutmix_alpha, 0.0, 100.0);
  f.add_double("model-ema-decay",
               "also keep an exponential moving average of the weights (timm's ModelEma); 0 = off [0]",
               &model_ema_decay, 0.0, 1.0);
  f.add_string("model-ema-warmup", "warm the EMA decay up as 1 - (1 + step)^(-3/4), capped at the decay [on]",
               &model_ema_warmup, {"on", "off"});
  f.add_string("tta",
               "test-time augmentation, reported beside the plain accuracy: flip averages the logits of the "
               "image and its mirror [none]",
               &tta, {"none", "flip"});
  f.add_int("precise-bn",
            "also evaluate with BatchNorm statistics recomputed over N training images for the current "
            "weights (docs/batchnorm.md); 0 = off [8192]",
            &precise_bn, 0, 1 << 30);
}

Recipe recipe_defaults(const std::string& name) {
  Recipe r;  // reference: PyTorch's reference recipe (shared/refs.md), as the struct's initialisers
  r.name = name;
  if (name == "reference") return r;
  // fast and long both: mirrored test images (docs/recipes.md)
  r.tta = "flip";
  if (name == "fast") {  // 6 epochs: no regulariser that needs a long run to pay off
    r.epochs = 6;
    r.stochastic_depth = 0;
    r.crop_padding = 2;  // a milder shift: the model underfits in 6 epochs (docs/recipes.md)
    return r;
  }
  // 30 epochs: timm's weight-decay exclusion, EMA, stochastic depth; crop and flip only, since
  // TrivialAugmentWide and random erasing left this model underfitting even after 30 epochs
  // (docs/recipes.md)
  if (name == "long") {
    r.epochs = 30;
    r.warmup_epochs = 2;
    r.norm_bias_decay = false;
    r.model_ema_decay = 0.9998;
    return r;
  }
  throw UsageError("--recipe " + name + ": expected reference, fast or long");
}

Recipe TrainFlags::recipe() const {
  Recipe r = recipe_defaults(recipe_name.value_or("reference"));
  r.epochs = epochs.value_or(r.epochs);
  r.batch = batch.value_or(r.batch);
  r.seed = seed.value_or(r.seed);
  r.subset = subset.value_or(r.subset);
  r.eval_subset = eval_subset.value_or(r.eval_subset);
  r.precise_bn = precise_bn.value_or(r.precise_bn);
  r.eval_every = eval_every.value_or(r.eval_every);
  r.lr = lr.value_or(r.lr);
  r.weight_decay = weight_decay.value_or(r.weight_decay);
  r.label_smoothing = label_smoothing.value_or(r.label_smoothing);
  r.warmup_epochs = warmup_epochs.value_or(r.warmup_epochs);
  r.val_split = val_split.value_or(r.val_split);
  if (norm_bias_decay) r.norm_bias_decay = *norm_bias_decay == "on";
  r.crop_padding = crop_padding.value_or(r.crop_padding);
  r.auto_augment = auto_augment.value_or(r.auto_augment);
  r.ra_magnitude = ra_magnitude.value_or(r.ra_magnitude);
  r.random_erase = random_erase.value_or(r.random_erase);
  r.mixup_alpha = mixup_alpha.value_or(r.mixup_alpha);
  r.cutmix_alpha = cutmix_alpha.value_or(r.cutmix_alpha);
  r.model_ema_decay = model_ema_decay.value_or(r.model_ema_decay);
  if (model_ema_warmup) r.model_ema_warmup = *model_ema_warmup == "on";
  r.tta = tta.value_or(r.tta);
  return r;
}

std::string exact_decimal(double x) {
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? sep : "") + parts[i];
  return s;
}

namespace {
std::string ints(const std::vector<int64_t>& v) {
  std::vector<std::string> s;
  for (int64_t x : v) s.push_back(std::to_string(x));
  return join(s, ",");
}
}  // namespace

std::vector<std::string> TrainFlags::canonical_args() const {
  const models::MaxVitConfig c = model_config();
  const Recipe r = recipe();
  // One flag and its value per line.
  // clang-format off
  std::vector<std::string> a = {
      "--preset", model.preset.value_or("cifar"),
      "--input-size", std::to_string(c.input_h) + "," + std::to_string(c.input_w),
      "--stem-channels", std::to_string(c.stem_channels),
      "--stem-stride", std::to_string(c.stem_stride),
      "--block-channels", ints(c.block_channels),
      "--block-layers", ints(c.block_layers),
      "--head-dim", std::to_string(c.head_dim),
      "--partition-size", std::to_string(c.partition_size),
      "--stochastic-depth", exact_decimal(c.stochastic_depth),
      "--num-classes", std::to_string(c.num_classes)};
  // A cumulative-average BatchNorm (no momentum) has no flag: the preset's default then stands.
  if (c.bn.momentum()) a.insert(a.end(), {"--bn-momentum", exact_decimal(*c.bn.momentum())});
  a.insert(a.end(), {
      "--bn-eps", exact_decimal(c.bn.eps()),
      "--dtype", model.dtype.value_or("float32"),
      "--epochs", std::to_string(r.epochs),
      "--batch", std::to_string(r.batch),
      "--lr", exact_decimal(r.lr),
      "--weight-decay", exact_decimal(r.weight_decay),
      "--label-smoothing", exact_decimal(r.label_smoothing),
      "--warmup-epochs", exact_decimal(r.warmup_epochs),
      "--seed", std::to_string(r.seed),
      "--subset", std::to_string(r.subset),
      "--eval-subset", std::to_string(r.eval_subset),
      "--eval-every", std::to_string(r.eval_every),
      "--precise-bn", std::to_string(r.precise_bn),
      "--recipe", r.name,
      "--val-split", std::to_string(r.val_split),
      "--norm-bias-decay", r.norm_bias_decay ? "on" : "off",
      "--crop-padding", std::to_string(r.crop_padding),
      "--auto-augment", r.auto_augment,
      "--ra-magnitude", std::to_string(r.ra_magnitude),
      "--random-erase", exact_decimal(r.random_erase),
      "--mixup-alpha", exact_decimal(r.mixup_alpha),
      "--cutmix-alpha", exact_decimal(r.cutmix_alpha),
      "--model-ema-decay", exact_decimal(r.model_ema_decay),
      "--model-ema-warmup", r.model_ema_warmup ? "on" : "off",
      "--tta", r.tta});
  // clang-format on
  return a;
}

TrainFlags merge_for_resume(const std::string& saved_config, const std::vector<std::string>& command_line,
                            const std::string& checkpoint_path) {
  std::vector<std::string> saved;
  std::istringstream in(saved_config);
  for (std::string tok; in >> tok;) saved.push_back(tok);

  // The saved configuration is parsed with the configuration's flags alone: anything else in it
  // (--out, --dump-step, --data, --threads, ...) is an error, never a setting.
  TrainFlags before;
  Flags fb("train_cifar", "");
  before.add_config_to(fb);
  TrainFlags merged;
  Flags fc("train_cifar", ""), fm("train_cifar", "");
  merged.add_config_to(fc);
  merged.add_to(fm);
  try {
    fb.parse(saved);
    fc.parse(saved);
  } catch (const UsageError& e) {
    throw UsageError("checkpoint " + checkpoint_path + " has an unreadable 'config' (" + printable(e.what(), 500) +
                     "); a checkpoint's configuration holds only model and recipe flags");
  }
  fm.parse(command_line);  // errors here are the command line's own

  // Both lists name the same flags in the same order, value after flag.
  const std::vector<std::string> a = before.canonical_args(), b = merged.canonical_args();
  std::string diff;
  for (size_t i = 0; i + 1 < a.size() && i + 1 < b.size(); i += 2)
    if (a[i] != b[i] || a[i + 1] != b[i + 1])
      diff += "\n  " + a[i] + ": the checkpoint has " + a[i + 1] + ", the command line " + b[i + 1];
  if (a.size() != b.size()) diff += "\n  (the configurations list different flags)";
  if (!diff.empty())
    throw UsageError("--resume: " + checkpoint_path +
                     " was trained with another configuration; a resumed run keeps the checkpoint's, so leave these "
                     "flags out or start a new --out:" +
                     diff);
  return merged;
}

}  // namespace mg::cli
