// predict: classifies image files with a train_cifar checkpoint and prints each one's top classes.
//
//   predict --checkpoint runs/cifar/last.safetensors cat.png ship.jpg [--top 5] [model flags]
//
//   cat.png
//     1. cat          87.31%
//     2. dog           6.10%
//     ...
//
// The model is built from the checkpoint's own configuration (its "config" metadata); model flags
// given here override it (--threads, --dtype; a different shape fails to load, naming the keys).
// Class names and the input normalisation also come from the checkpoint. Images of another size
// than the model's input are resized (bilinear) first.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "examples/common/checkpoint_config.h"
#include "examples/common/train_flags.h"
#include "maxgrad/core/runtime/blas_select.h"
#include "maxgrad/data/image_decode.h"
#include "maxgrad/data/transforms.h"
#include "maxgrad/nn/precise_bn.h"
#include "maxgrad/nn/serialize/checkpoint.h"
#include "maxgrad/nn/serialize/safetensors.h"

using namespace mg;

namespace {

struct PredictFlags {
  std::optional<std::string> checkpoint;
  std::optional<int64_t> top;
  std::vector<std::string> images;
  void add_to(cli::Flags& f) {
    f.add_string("checkpoint", "a train_cifar checkpoint (OUT/last.safetensors)", &checkpoint);
    f.add_int("top", "classes listed per image [5]", &top, 1, 1000);
    f.add_positional("IMAGE...", "JPEG, PNG or BMP files to classify", &images);
  }
};
constexpr const char* kSynopsis = "--checkpoint CK.safetensors [--top 5] [model flags] IMAGE...";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);) out.push_back(item);
  return out;
}

// The model flags: the checkpoint's configuration, then this command line's model flags over it.
models::MaxVitConfig config_from(const serialize::Checkpoint& ck, const std::vector<std::string>& args,
                                 cli::ModelFlags& model) {
  PredictFlags ignored;
  model = cli::checkpoint_flags(ck, args, "predict", [&](cli::Flags& f) { ignored.add_to(f); }).model;
  return model.config(0.0);  // no stochastic depth at inference
}

// Bilinear resize of a (3, h, w) uint8 image to (3, H, W), pixel centres aligned (no antialiasing:
// enough to try a photo on a 32x32 model).
std::vector<uint8_t> resize(const std::vector<uint8_t>& src, int64_t h, int64_t w, int64_t H, int64_t W) {
  std::vector<uint8_t> dst(static_cast<size_t>(3 * H * W));
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < H; ++y) {
      const double sy =
          std::clamp((static_cast<double>(y) + 0.5) * static_cast<double>(h) / static_cast<double>(H) - 0.5, 0.0,
                     static_cast<double>(h - 1));
      const auto y0 = static_cast<int64_t>(sy);
      const int64_t y1 = std::min(y0 + 1, h - 1);
      const double fy = sy - static_cast<double>(y0);
      for (int64_t x = 0; x < W; ++x) {
        const double sx =
            std::clamp((static_cast<double>(x) + 0.5) * static_cast<double>(w) / static_cast<double>(W) - 0.5, 0.0,
                       static_cast<double>(w - 1));
        const auto x0 = static_cast<int64_t>(sx);
        const int64_t x1 = std::min(x0 + 1, w - 1);
        const double fx = sx - static_cast<double>(x0);
        auto at = [&](int64_t yy, int64_t xx) {
          return static_cast<double>(src[static_cast<size_t>((c * h + yy) * w + xx)]);
        };
        const double v =
            (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
        dst[static_cast<size_t>((c * H + y) * W + x)] = static_cast<uint8_t>(std::clamp(v + 0.5, 0.0, 255.0));
      }
    }
  return dst;
}

}  // namespace

// A train_cifar checkpoint may carry, beside its state_dict, the averaged weights of
// --model-ema-decay (extra.ema.NAME) and precise BatchNorm statistics recomputed for the final
// weights (extra.precise_bn.LAYER.running_mean/var, see nn/precise_bn.h) or for the averaged ones
// (extra.ema_precise_bn.*). Its metadata says which evaluated better ("eval_weights": model or ema;
// "eval_bn": running or precise; on the held-out images when the run had them): those are used, and
// stderr says which.
void use_best_weights(const serialize::Checkpoint& ck, models::MaxVit& model) {
  auto said = [&](const char* key) {
    const auto it = ck.info.metadata.find(key);
    return it == ck.info.metadata.end() ? std::string() : it->second;
  };
  const std::map<std::string, Tensor> extra(ck.info.extra.begin(), ck.info.extra.end());
  auto entry = [&](const std::string& name, const Tensor& like, const char* what) {
    const auto it = extra.find(name);
    MG_CHECK(it != extra.end() && it->second.shape() == like.shape() && it->second.dtype() == like.dtype(),
             "checkpoint " + ck.path, "says its ", what, " evaluated better, but ", name,
             " is missing or not of shape ", like.info());
    return it->second;
  };
  const bool ema = said("eval_weights") == "ema";
  std::vector<std::pair<Tensor, Tensor>> copies;  // (model tensor, what it becomes): all checked first
  if (ema)
    for (const auto& [name, t] : model.state_dict()) copies.push_back({t, entry("ema." + name, t, "averaged weights")});
  const bool precise = said("eval_bn") == "precise";
  const std::string prefix = ema ? "ema_precise_bn." : "precise_bn.";
  if (precise)
    for (auto& [name, bn] : nn::batch_norm_layers(model)) {
      copies.push_back(
          {bn->running_mean, entry(prefix + name + ".running_mean", bn->running_mean, "precise statistics")});
      copies.push_back({bn->running_var, entry(prefix + name + ".running_var", bn->running_var, "precise statistics")});
    }
  NoGradGuard no_grad;
  for (auto& [to, from] : copies) to.copy_(from);
  const std::string images = said("precise_bn_images");
  std::cerr << "predict: " << (ema ? "the averaged weights (EMA), " : "") << "BatchNorm statistics: "
            << (precise ? "precise, recomputed for the final weights" +
                              (images.empty() ? "" : " over " + images + " training images")
                        : std::string("the running ones, as trained"))
            << (ema || precise ? " (they evaluated better)" : "") << "\n";
}

int main(int argc, char** argv) {
  select_blas_kernels(argc, argv);
  PredictFlags pf;
  cli::ModelFlags model_flags;
  cli::Flags flags("predict", kSynopsis);
  model_flags.add_to(flags);
  pf.add_to(flags);
  flags.parse_or_exit(argc, argv);
  // A word that is no file is a mistyped flag far more often than a missing image: refused before any
  // work, like every other bad command line.
  for (const std::string& image : pf.images)
    if (!std::filesystem::is_regular_file(image)) {
      std::cerr << "predict: unexpected argument '" << image << "': no such file (arguments are images to classify)\n\n"
                << flags.usage();
      return 2;
    }
  if (!pf.checkpoint || pf.images.empty()) {
    std::cerr << "predict: --checkpoint and at least one image are required\n\n" << flags.usage();
    return 2;
  }
  // Until the model is loaded, every failure is the checkpoint's (shared/spec/cli.md: exit 2); after,
  // an image's decoding errors are DataError (exit 2), anything else a failure of this program.
  bool loading = true;
  try {
    const serialize::Checkpoint ck = serialize::read_checkpoint(*pf.checkpoint);
    cli::ModelFlags mf;
    models::MaxVitConfig cfg;
    try {
      cfg = config_from(ck, std::vector<std::string>(argv + 1, argv + argc), mf);
    } catch (const cli::UsageError& e) {
      std::cerr << "predict: " << e.what() << "\n";
      return 2;
    }
    mf.apply_threads();
    const DType dt = mf.tensor_dtype();
    cli::check_config_fits(cfg, ck);
    models::MaxVit model(cfg, 0);
    model.to(dt);
    serialize::restore_weights(ck, model);
    use_best_weights(ck, model);
    model.eval();
    loading = false;

    std::vector<std::string> classes;
    if (auto it = ck.info.metadata.find("classes"); it != ck.info.metadata.end()) classes = split(it->second, ',');
    for (auto i = static_cast<int64_t>(classes.size()); i < cfg.num_classes; ++i)
      classes.push_back("class " + std::to_string(i));
    const data::Normalization norm = cli::checkpoint_normalization(ck);
    const int64_t H = cfg.input_h, W = cfg.input_w, top = std::min(pf.top.value_or(5), cfg.num_classes);

    for (const std::string& path : pf.images) {
      const data::ImageHeader hd = data::read_image_header(path);
      std::vector<uint8_t> img(static_cast<size_t>(3 * hd.height * hd.width));
      data::decode_image_rgb(path, hd.height, hd.width, img.data());
      if (hd.height != H || hd.width != W) img = resize(img, hd.height, hd.width, H, W);
      Tensor x = Tensor::empty({1, 3, H, W}, DType::Float32);
      data::normalize(img.data(), 3, H, W, norm, x.data<float>());
      NoGradGuard no_grad;
      const std::vector<double> p = softmax(model(x.to(dt)), 1).to_vector();
      std::vector<int64_t> order(p.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
      std::partial_sort(order.begin(), order.begin() + top, order.end(),
                        [&](int64_t a, int64_t b) { return p[static_cast<size_t>(a)] > p[static_cast<size_t>(b)]; });
      std::cout << path
                << (hd.height != H || hd.width != W ? cat("  (resized from ", hd.width, "x", hd.height, ")") : "")
                << "\n";
      for (int64_t k = 0; k < top; ++k) {
        const auto c = static_cast<size_t>(order[static_cast<size_t>(k)]);
        char line[160];
        std::snprintf(line, sizeof line, "  %lld. %-12s %6.2f%%\n", static_cast<long long>(k + 1), classes[c].c_str(),
                      100 * p[c]);
        std::cout << line;
      }
    }
  } catch (const data::DataError& e) {  // an image that is not one
    std::cerr << "predict: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "predict: " << e.what() << "\n";  // the errors name the file
    return loading ? 2 : 1;
  }
  return 0;
}
