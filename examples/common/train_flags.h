// train_cifar's flags: the shared model flags (shared/spec/cli.md) plus the training recipe, whose
// defaults are shared/refs.md's reference recipe.
//
// The flags that decide a run's result are also its configuration record: canonical_args() writes
// them all out (defaults included) for the checkpoint, and --resume reads them back, so a resumed
// run needs no flags repeated, and a flag repeated with another value is refused.
#pragma once
#include <string>
#include <vector>

#include "examples/common/model_flags.h"

namespace mg::cli {

// The recipe with every default applied: a named recipe's values (recipe_defaults), then each
// flag given on the command line over them.
struct Recipe {
  std::string name = "reference";  // reference | fast | long (docs/recipes.md)
  int64_t epochs = 12, batch = 128, seed = 0;
  int64_t subset = 0, eval_subset = 0;  // images per class; 0: all
  int64_t val_split = 0;                // the last N training images of each class, held out; 0: none
  double lr = 2e-3, weight_decay = 0.05, label_smoothing = 0.1, warmup_epochs = 1.0;
  bool norm_bias_decay = true;    // weight decay also on biases, norm weights, position-bias tables
  double stochastic_depth = 0.1;  // the model flag's default when training
  // Training images over which every evaluation also recomputes the BatchNorm statistics for the
  // current weights (nn/precise_bn.h), beside the running ones; 0: off. pycls uses 8192.
  int64_t precise_bn = 8192;
  // Evaluate after every N-th epoch and after the last (training is the same bits either way).
  int64_t eval_every = 1;
  int64_t crop_padding = 4;           // random crop 32 from a zero-padded image: pixels added per side
  std::string auto_augment = "none";  // none | ta_wide (TrivialAugmentWide) | ra (RandAugment)
  int64_t ra_magnitude = 9;
  double random_erase = 0;                   // probability of RandomErasing per image
  double mixup_alpha = 0, cutmix_alpha = 0;  // Beta(alpha, alpha); 0: off
  double model_ema_decay = 0;                // 0: no weight average
  bool model_ema_warmup = true;              // timm's decay warm-up 1 - (1 + step)^(-3/4)
  std::string tta = "none";                  // none | flip: test-time augmentation, reported beside
};

// A named recipe's values; throws UsageError for an unknown name.
Recipe recipe_defaults(const std::string& name);

struct TrainFlags {
  static constexpr const char* kSynopsis =
      "[model flags] [--data DIR] [--recipe reference|fast|long] [--epochs 12] [--batch 128] [--lr 2e-3]\n"
      "       [--weight-decay 0.05] [--label-smoothing 0.1] [--warmup-epochs 1] [--seed 0] [--subset N]\n"
      "       [--eval-subset N] [--eval-every 1] [--val-split N] [--precise-bn 8192] [--crop-padding 4]\n"
      "       [--auto-augment none|ta_wide|ra] [--random-erase P] [--mixup-alpha A] [--cutmix-alpha A]\n"
      "       [--model-ema-decay D] [--tta none|flip]\n"
      "       [--out DIR] [--resume] [--max-steps N] [--sync-bn]\n"
      "  several processes: mpirun -np K train_cifar ... (docs/distributed.md)";

  ModelFlags model;
  std::optional<std::string> data, out;
  std::optional<int64_t> epochs, batch, seed, subset, eval_subset, val_split, precise_bn, max_steps, nan_at_step;
  std::optional<double> lr, weight_decay, label_smoothing, warmup_epochs;
  std::optional<std::string> recipe_name, auto_augment, norm_bias_decay, model_ema_warmup, tta;
  std::optional<int64_t> ra_magnitude, crop_padding, eval_every;
  std::optional<double> random_erase, mixup_alpha, cutmix_alpha, model_ema_decay;
  bool resume = false, synthetic = false;
  // Launch options, like mpirun's -np: not part of the configuration record, given again on --resume.
  bool sync_bn = false;
  std::optional<std::string> dump_step;

  void add_to(Flags& f);
  // Only the configuration record's flags: the model's (without --threads) and the recipe's. A
  // checkpoint's saved configuration is parsed with these alone, so a file cannot set where the
  // run writes (--out, --dump-step), what it reads (--data) or how it runs (--threads, --max-steps,
  // --sync-bn, --nan-at-step).
  void add_config_to(Flags& f);
  Recipe recipe() const;
  models::MaxVitConfig model_config() const { return model.config(recipe().stochastic_depth); }
  std::string out_dir() const { return out.value_or("runs/cifar"); }
  // "--preset cifar --input-size 32,32 ... --epochs 12 --batch 128 ...": every flag that changes the
  // weights or the logged numbers, with its resolved value. Throws UsageError for a bad model config.
  std::vector<std::string> canonical_args() const;
};

// --resume: the checkpoint's configuration (canonical_args joined by spaces) with the command line
// parsed over it. Throws UsageError listing every flag whose value differs from the checkpoint's.
TrainFlags merge_for_resume(const std::string& saved_config, const std::vector<std::string>& command_line,
                            const std::string& checkpoint_path);

// Shortest decimal that reads back as exactly x ("0.002", not "0.0020000000000000000416").
std::string exact_decimal(double x);
std::string join(const std::vector<std::string>& parts, const std::string& sep);

}  // namespace mg::cli
