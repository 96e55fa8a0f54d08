// cnn: a small convolutional network on CIFAR-10, the whole train/eval loop in view (the shape of
// libtorch's MNIST example). Conv, BatchNorm, ReLU and pooling in one Sequential, SGD with momentum.
//
//   cnn [--data DIR] [--per-class 500] [--epochs 4] [--batch 64]
//
// DIR holds CIFAR-10's binary batches (data_batch_1.bin ... test_batch.bin) or train/ and test/
// folders of class folders of images. Without --data it trains on maxgrad's built-in synthetic
// 10-class set (data/synthetic.h), so it runs anywhere.
#include <maxgrad/maxgrad.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "examples/common/flags.h"

using namespace mg;

// A loader's batch (normalised float pixels, int labels) as tensors: x (N, 3, H, W), y (N).
void to_tensors(const data::Batch& b, Tensor& x, Tensor& y) {
  x = Tensor::empty({b.n, b.c, b.h, b.w});
  std::memcpy(x.data<float>(), b.x.data(), b.x.size() * sizeof(float));
  y = Tensor::from_vector_i64(b.y, {b.n});
}

// The fraction of `set` the model classifies right, in eval mode (BatchNorm's running statistics).
double evaluate(nn::Module& model, const data::Dataset& set) {
  model.eval();
  NoGradGuard no_grad;
  data::DataLoader loader(set, {/*batch_size=*/256, /*shuffle=*/false});
  loader.start_epoch(0);
  int64_t right = 0;
  Tensor x, y;
  for (data::Batch b; loader.next(b);) {
    to_tensors(b, x, y);
    const std::vector<double> pred = argmax(model.forward(x), 1).to_vector();
    for (int64_t i = 0; i < b.n; ++i) right += static_cast<int64_t>(pred[static_cast<size_t>(i)]) == b.y[i];
  }
  return static_cast<double>(right) / static_cast<double>(set.size());
}

int main(int argc, char** argv) {
  std::optional<std::string> data_dir;
  std::optional<int64_t> per_class_flag, epochs_flag, batch_flag;
  cli::Flags flags("cnn", "[--data DIR] [--per-class 500] [--epochs 4] [--batch 64]");  // strict flag parser
  flags.add_string("data", "CIFAR-10: binary batches, or train/ and test/ image folders [synthetic set]", &data_dir);
  flags.add_int("per-class", "training images per class [500]", &per_class_flag, 1, 5000);
  flags.add_int("epochs", "passes over the training images [4]", &epochs_flag, 1, 1000);
  flags.add_int("batch", "images per SGD step [64]", &batch_flag, 2, 4096);
  flags.parse_or_exit(argc, argv);
  const std::string dir = data_dir.value_or("");
  const int64_t per_class = per_class_flag.value_or(500), epochs = epochs_flag.value_or(4),
                batch = batch_flag.value_or(64);
  namespace fs = std::filesystem;
  data::ImageSet train, test;
  if (dir.empty()) {
    train = data::make_synthetic(10 * per_class, /*seed=*/1);
    test = data::make_synthetic(1000, /*seed=*/2);
  } else if (fs::exists(fs::path(dir) / "data_batch_1.bin")) {
    train = data::load_cifar10_binary(dir, data::CifarSplit::train);
    test = data::load_cifar10_binary(dir, data::CifarSplit::test);
  } else {
    train = data::to_memory(data::ImageFolder((fs::path(dir) / "train").string()));
    test = data::to_memory(data::ImageFolder((fs::path(dir) / "test").string()));
  }
  const data::Subset train_part = data::first_per_class(train, per_class);
  std::printf("%s: %lld training images, %lld test images\n", dir.empty() ? "synthetic set" : dir.c_str(),
              static_cast<long long>(train_part.size()), static_cast<long long>(test.size()));

  // (3, 32, 32) -> 16 x 16x16 -> 32 x 8x8 -> 64 x 8x8 -> 64 -> 10 logits
  Generator gen(0);
  auto conv = [&](int64_t in, int64_t out) {
    return std::make_shared<nn::Conv2d>(nn::Conv2dOptions(in, out, 3).padding(1).bias(false), gen);
  };
  nn::Sequential model({conv(3, 16), std::make_shared<nn::BatchNorm2d>(16), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::AvgPool2d>(nn::AvgPool2dOptions(2)),  //
                        conv(16, 32), std::make_shared<nn::BatchNorm2d>(32), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::AvgPool2d>(nn::AvgPool2dOptions(2)),  //
                        conv(32, 64), std::make_shared<nn::BatchNorm2d>(64), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::AdaptiveAvgPool2d>(1), std::make_shared<nn::Flatten>(),
                        std::make_shared<nn::Linear>(64, 10, true, gen)});
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));

  // random crops and flips, a new order every epoch
  data::DataLoader loader(train_part, {batch, /*shuffle=*/true, /*drop_last=*/true, /*seed=*/0, /*augment=*/true});
  Tensor x, y;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    model.train();
    loader.start_epoch(epoch);
    double loss_sum = 0;
    int64_t steps = 0;
    for (data::Batch b; loader.next(b); ++steps) {
      to_tensors(b, x, y);
      const Tensor loss = cross_entropy(model.forward(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      loss_sum += loss.item();
    }
    std::printf("epoch %lld  train loss %.4f  test accuracy %.1f%%\n", static_cast<long long>(epoch + 1),
                loss_sum / static_cast<double>(steps), 100 * evaluate(model, test));
  }
  std::printf("test accuracy %.1f%%\n", 100 * evaluate(model, test));
}
