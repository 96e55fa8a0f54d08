// mlp: micrograd's demo in C++. A two-layer MLP learns to separate two interleaved half-moons, with
// SGD, printing the loss as it goes, then draws its decision boundary as a PNG.
//
//   mlp [--steps 300] [--png moons.png]
//
// Everything is the library's public API (<maxgrad/maxgrad.h>): the data is made here, the model is
// a Sequential of Linear and ReLU, the loss is cross_entropy, the optimiser SGD with momentum.
#include <maxgrad/maxgrad.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "examples/common/flags.h"

using namespace mg;

// n points on two half-circles, one the other's mirror shifted so they interlock (scikit-learn's
// make_moons), with Gaussian noise. x (n, 2) float32, y (n) int64 in {0, 1}.
void make_moons(int64_t n, double noise, Generator& gen, Tensor& x, Tensor& y) {
  std::vector<double> xs;
  std::vector<int64_t> ys;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = i % 2;
    const double t = M_PI * gen.uniform();
    const double px = label == 0 ? std::cos(t) : 1 - std::cos(t);
    const double py = label == 0 ? std::sin(t) : 0.5 - std::sin(t);
    xs.push_back(px + noise * gen.normal());
    xs.push_back(py + noise * gen.normal());
    ys.push_back(label);
  }
  x = Tensor::from_vector(xs, {n, 2});
  y = Tensor::from_vector_i64(ys, {n});
}

// The fraction of rows whose largest logit is their label.
double accuracy(const Tensor& logits, const Tensor& y) {
  const std::vector<double> pred = argmax(logits, 1).to_vector(), truth = y.to_vector();
  int64_t right = 0;
  for (size_t i = 0; i < pred.size(); ++i) right += pred[i] == truth[i];
  return static_cast<double>(right) / static_cast<double>(pred.size());
}

// The plane from -1.5..2.5 x -1..1.5, each pixel coloured by the class the model gives it, the
// training points on top.
void draw(nn::Module& model, const Tensor& x, const Tensor& y, const std::string& path) {
  const int w = 320, h = 200;
  std::vector<double> grid;
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) grid.push_back(-1.5 + 4.0 * c / w), grid.push_back(1.5 - 2.5 * r / h);
  NoGradGuard no_grad;
  const std::vector<double> cls = argmax(model.forward(Tensor::from_vector(grid, {w * h, 2})), 1).to_vector();
  std::vector<unsigned char> px(static_cast<size_t>(w * h * 3));
  for (int i = 0; i < w * h; ++i) {
    const unsigned char rgb[2][3] = {{250, 200, 160}, {170, 200, 250}};
    std::memcpy(&px[static_cast<size_t>(i) * 3], rgb[cls[static_cast<size_t>(i)] > 0.5], 3);
  }
  const std::vector<double> xv = x.to_vector(), yv = y.to_vector();
  for (size_t i = 0; i < yv.size(); ++i) {
    const int c = static_cast<int>((xv[2 * i] + 1.5) / 4.0 * w), r = static_cast<int>((1.5 - xv[2 * i + 1]) / 2.5 * h);
    for (int dr = -1; dr <= 1; ++dr)
      for (int dc = -1; dc <= 1; ++dc)
        if (r + dr >= 0 && r + dr < h && c + dc >= 0 && c + dc < w) {
          unsigned char* p = &px[static_cast<size_t>(((r + dr) * w + c + dc) * 3)];
          p[0] = yv[i] ? 30 : 200, p[1] = 60, p[2] = yv[i] ? 200 : 30;
        }
  }
  if (!stbi_write_png(path.c_str(), w, h, 3, px.data(), w * 3)) throw Error("mlp: could not write " + path);
  std::printf("decision boundary: %s\n", path.c_str());
}

int main(int argc, char** argv) {
  std::optional<int64_t> steps;
  std::optional<std::string> png;
  cli::Flags flags("mlp", "[--steps 300] [--png moons.png]");  // the examples' strict flag parser
  flags.add_int("steps", "SGD steps [300]", &steps, 1, 1000000);
  flags.add_string("png", "where to draw the decision boundary [moons.png]", &png);
  flags.parse_or_exit(argc, argv);
  Generator gen(1);
  Tensor x, y;
  make_moons(200, 0.1, gen, x, y);

  // 2 -> 16 -> 16 -> 2: two hidden layers of ReLUs, as micrograd's demo
  nn::Sequential model({std::make_shared<nn::Linear>(2, 16, true, gen), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(16, 16, true, gen), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(16, 2, true, gen)});
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1).momentum(0.9));

  for (int64_t step = 1; step <= steps.value_or(300); ++step) {
    const Tensor logits = model.forward(x);
    const Tensor loss = cross_entropy(logits, y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step % 50 == 0 || step == 1)
      std::printf("step %3lld  loss %.4f  accuracy %.1f%%\n", static_cast<long long>(step), loss.item(),
                  100 * accuracy(logits, y));
  }
  NoGradGuard no_grad;
  std::printf("final accuracy %.1f%%\n", 100 * accuracy(model.forward(x), y));
  draw(model, x, y, png.value_or("moons.png"));
}
