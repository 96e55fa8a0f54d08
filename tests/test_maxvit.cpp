// MaxViT's pieces against torchvision's numbers (committed in tests/golden/, made by make_cases.py):
// partitioning, the relative-position index, state_dict names and shapes of both presets, parameter
// and FLOP counts; BatchNorm's momentum convention; config errors; and the non-square path, which
// torchvision cannot run (it derives the grid cell from the height alone), by gradcheck and symmetry.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "maxgrad/core/factory.h"
#include "examples/common/step_flags.h"
#include "gradcheck.h"
#include "maxgrad/models/maxvit.h"

using namespace mg;
using models::MaxVit;
using models::MaxVitConfig;
namespace fs = std::filesystem;

namespace {

fs::path golden_dir() {
  const char* s = std::getenv("MAXGRAD_SOURCE");
  REQUIRE_MESSAGE(s != nullptr, "MAXGRAD_SOURCE must point at the project's source folder (CTest sets it)");
  return fs::path(s) / "tests" / "golden";
}

// Non-comment lines of a committed reference file.
std::vector<std::string> lines_of(const std::string& file) {
  std::ifstream f(golden_dir() / file);
  REQUIRE_MESSAGE(f.good(), "cannot read tests/golden/", file);
  std::vector<std::string> out;
  for (std::string l; std::getline(f, l);)
    if (!l.empty() && l[0] != '#') out.push_back(l);
  return out;
}

// max |a - b| <= tol * max(1, max |b|)
void check_close(const Tensor& a, const Tensor& b, double tol, const std::string& what) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), what, ": ", a.info(), " vs ", b.info());
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double scale = 1, worst = 0;
  for (double x : vb) scale = std::max(scale, std::fabs(x));
  for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::fabs(va[i] - vb[i]));
  CHECK_MESSAGE(worst <= tol * scale, what, ": max |diff| ", worst, " (scale ", scale, ")");
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A small config in the shape the tests below need.
MaxVitConfig tiny(int64_t h, int64_t w, std::vector<int64_t> channels, int64_t partition, int64_t stem_stride = 1) {
  MaxVitConfig c;
  c.input_h = h, c.input_w = w;
  c.stem_channels = 4;
  c.stem_stride = stem_stride;
  c.block_channels = channels;
  c.block_layers = std::vector<int64_t>(channels.size(), 1);
  c.head_dim = 4;
  c.partition_size = partition;
  c.num_classes = 3;
  return c;
}

// Weights of unit scale (the default init's 0.02 makes every signal tiny, and so every check weak):
// matrices N(0, 1/fan_in), norm scales around 1, biases and bias tables around 0, and non-trivial
// running statistics.
void scramble(MaxVit& m, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard no_grad;
  for (auto& [name, t] : m.state_dict()) {
    if (t.dtype() == DType::Int64) continue;
    auto ends = [&](const std::string& s) {
      return name.size() >= s.size() && name.rfind(s) == name.size() - s.size();
    };
    if (t.dim() >= 2 && !ends("relative_position_bias_table"))
      t.copy_(mul(randn(t.shape(), gen, t.dtype()), 1.0 / std::sqrt(double(t.numel() / t.size(0)))));
    else if (ends("running_var"))
      t.copy_(exp(mul(randn(t.shape(), gen, t.dtype()), 0.3)));
    else if (ends(".weight"))
      t.copy_(add(mul(randn(t.shape(), gen, t.dtype()), 0.2), 1.0));
    else
      t.copy_(mul(randn(t.shape(), gen, t.dtype()), 0.3));
  }
}

// Both (row, col) offset axes of a ((2P-1)^2, heads) relative-position bias table swapped.
Tensor transpose_table(const Tensor& t, int64_t p) {
  const int64_t k = 2 * p - 1;
  return t.reshape({k, k, t.size(1)}).transpose(0, 1).contiguous().reshape({k * k, t.size(1)});
}

bool is_table(const std::string& name) { return name.find("relative_position_bias_table") != std::string::npos; }

}  // namespace

// ---------------------------------------------------------------- partitioning

TEST_CASE("window_partition and window_departition are inverse, with torchvision's layout; grid_partition too") {
  Generator gen(1);
  for (auto [h, w, ph, pw] :
       std::vector<std::array<int64_t, 4>>{{8, 8, 4, 4}, {8, 12, 2, 3}, {6, 4, 3, 1}, {4, 8, 4, 8}}) {
    CAPTURE(h);
    CAPTURE(w);
    CAPTURE(ph);
    CAPTURE(pw);
    Tensor x = randn({2, 5, h, w}, gen, DType::Float64);
    Tensor p = models::window_partition(x, ph, pw);
    REQUIRE(p.shape() == Shape{2, (h / ph) * (w / pw), ph * pw, 5});
    // group g = (gi, gj) row-major over the (H/ph, W/pw) cells; token t = (a, b) row-major in a cell
    for (int64_t b : {0, 1})
      for (int64_t g = 0; g < p.size(1); g += 1)
        for (int64_t t = 0; t < p.size(2); t += 1) {
          const int64_t gi = g / (w / pw), gj = g % (w / pw), a = t / pw, bb = t % pw;
          if (p.at({b, g, t, 3}) != x.at({b, 3, gi * ph + a, gj * pw + bb})) {
            FAIL_CHECK("partition layout differs at group ", g, " token ", t);
            return;
          }
        }
    Tensor back = models::window_departition(p, ph, pw, h / ph, w / pw);
    REQUIRE(back.shape() == x.shape());
    CHECK(back.to_vector() == x.to_vector());
    // grid_partition is the transposed window partition, in one copy; grid_departition undoes it
    Tensor gp = models::grid_partition(x, ph, pw);
    CHECK(gp.to_vector() == p.transpose(1, 2).to_vector());
    CHECK(models::grid_departition(gp, ph, pw, h / ph, w / pw).to_vector() == x.to_vector());
  }
  CHECK(error_of([] {
          models::window_partition(zeros({1, 2, 6, 6}), 4, 4);
        }).find("not divisible") != std::string::npos);
}

TEST_CASE("relative_position_index equals torchvision's for P = 2, 3, 4") {
  const auto lines = lines_of("relative_position_index.txt");
  REQUIRE(lines.size() == 3);
  for (const std::string& line : lines) {
    std::istringstream in(line);
    int64_t p;
    in >> p;
    std::vector<double> want;
    for (int64_t v; in >> v;) want.push_back(double(v));
    CAPTURE(p);
    Tensor idx = models::relative_position_index(p);
    CHECK(idx.dtype() == DType::Int64);
    CHECK(idx.shape() == Shape{p * p, p * p});
    CHECK(idx.to_vector() == want);
  }
}

// ---------------------------------------------------------------- presets and torchvision's names

namespace {
// Built once per preset (maxvit_t takes a second): its names here, its FLOPs below.
MaxVit& preset_model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<MaxVit>> built;
  auto& m = built[name];
  if (!m) m = std::make_unique<MaxVit>(MaxVitConfig::preset(name), 0);
  return *m;
}

// "name dtype d0,d1,..." per state_dict entry, as torchvision lists it, against a built model.
void check_names(const std::string& preset, const std::string& file, int64_t params, size_t entries) {
  const MaxVit& m = preset_model(preset);
  CHECK(m.num_parameters() == params);
  const nn::NamedTensors sd = m.state_dict();
  CHECK(sd.size() == entries);
  const auto want = lines_of(file);
  REQUIRE(want.size() == entries);
  for (size_t i = 0; i < std::min(sd.size(), want.size()); ++i) {
    std::istringstream in(want[i]);
    std::string name, dtype, dims;
    in >> name >> dtype >> dims;
    Shape shape;
    std::stringstream ds(dims);
    for (std::string d; std::getline(ds, d, ',');) shape.push_back(std::stoll(d));
    const auto& [got_name, t] = sd[i];
    CHECK_MESSAGE(got_name == name, "entry ", i, ": torchvision has ", name, ", maxgrad ", got_name);
    CHECK_MESSAGE(t.shape() == shape, name, ": torchvision ", dims, ", maxgrad ", t.info());
    CHECK_MESSAGE((t.dtype() == DType::Int64) == (dtype == "int64"), name, ": torchvision ", dtype, ", maxgrad ",
                  t.info());
  }
}
}  // namespace

TEST_CASE("preset cifar: 1,500,396 parameters, state_dict exactly torchvision's") {
  check_names("cifar", "names_cifar.txt", 1500396, 325);
}

TEST_CASE("preset maxvit_t: 30,919,624 parameters, 582 state_dict entries, exactly torchvision's") {
  check_names("maxvit_t", "names_maxvit_t.txt", 30919624, 582);
}

TEST_CASE("flops_per_image equals shared/tools/torch_flops.py's count") {
  const auto lines = lines_of("flops.txt");
  REQUIRE(lines.size() >= 3);
  for (const std::string& line : lines) {
    std::istringstream in(line);
    std::string name;
    double want = 0;
    in >> name >> want;
    CAPTURE(name);
    if (name == "cifar" || name == "maxvit_t") {
      CHECK(preset_model(name).flops_per_image() == want);
    } else {  // a committed golden case: its args.txt's model flags
      std::ifstream f(golden_dir() / name / "args.txt");
      REQUIRE(f.good());
      std::vector<std::string> words;
      for (std::string w; f >> w;) words.push_back(w);
      cli::StepFlags sf;
      cli::Flags flags("step_dump", cli::StepFlags::kSynopsis);
      sf.add_to(flags);
      flags.parse(words);
      CHECK(MaxVit(sf.config(), 0).flops_per_image() == want);
    }
  }
  // The cifar preset: 0.139 GFLOP per image, to 3 digits.
  CHECK(std::round(preset_model("cifar").flops_per_image() / 1e6) == 139);
}

// ---------------------------------------------------------------- configuration errors

TEST_CASE("a config that does not fit names every block's feature map") {
  MaxVitConfig c = MaxVitConfig::preset("cifar");  // 32x32, stem stride 1, 3 blocks
  c.partition_size = 3;
  const std::string msg = error_of([&] { c.validate(); });
  for (const char* part : {"stem 32x32", "block 0 16x16", "block 1 8x8", "block 2 4x4",
                           "block 0: feature map 16x16 is not divisible by partition size 3",
                           "block 1: feature map 8x8", "block 2: feature map 4x4"})
    CHECK_MESSAGE(msg.find(part) != std::string::npos, "'", part, "' missing from: ", msg);

  c = MaxVitConfig::preset("cifar");
  c.input_w = 48;  // 16x24, 8x12, 4x6: only the last block fails
  c.head_dim = 24;
  const std::string msg2 = error_of([&] { c.validate(); });
  for (const char* part : {"stem 32x48", "block 0 16x24", "block 1 8x12", "block 2 4x6",
                           "block 2: feature map 4x6 is not divisible by partition size 4",
                           "block 0: channels 32 are not divisible by head_dim 24"})
    CHECK_MESSAGE(msg2.find(part) != std::string::npos, "'", part, "' missing from: ", msg2);
  CHECK(msg2.find("block 1: feature map") == std::string::npos);
  CHECK(error_of([&] { MaxVit m(c, 0); }) == msg2);

  // The command line reports the model's own explanation as a usage error.
  cli::ModelFlags mf;
  mf.partition_size = 3;
  try {
    mf.config(0.0);
    FAIL_CHECK("expected a UsageError");
  } catch (const cli::UsageError& e) {
    CHECK(std::string(e.what()).find("block 2 4x4") != std::string::npos);
  }
}

// ---------------------------------------------------------------- BatchNorm's momentum convention

TEST_CASE("BatchNorm2d momentum is PyTorch's: one step with 0.01 moves running stats 1% toward the batch") {
  Generator gen(7);
  Tensor x = add(mul(randn({4, 3, 5, 5}, gen, DType::Float64), 2.0), 1.5);
  const Tensor batch_mean = mean(x, {0, 2, 3}), batch_var = var(x, {0, 2, 3}, 1);  // unbiased, as PyTorch

  nn::BatchNorm2d bn(3, nn::BatchNormOptions::pytorch(0.01, 1e-3));
  bn.to(DType::Float64);
  {
    NoGradGuard no_grad;
    bn.running_mean.copy_(Tensor::from_vector({0.5, -1, 2}, {3}, DType::Float64));
    bn.running_var.copy_(Tensor::from_vector({1, 4, 0.25}, {3}, DType::Float64));
  }
  const Tensor rm0 = bn.running_mean.clone(), rv0 = bn.running_var.clone();
  bn.train();
  bn(x);
  check_close(bn.running_mean, add(mul(rm0, 0.99), mul(batch_mean, 0.01)), 1e-14, "running_mean");
  check_close(bn.running_var, add(mul(rv0, 0.99), mul(batch_var, 0.01)), 1e-14, "running_var");
  CHECK(bn.num_batches_tracked.item() == 1);

  // eval: the running statistics, not the batch's
  bn.eval();
  Tensor y = bn(x);
  Tensor want =
      div(sub(x, bn.running_mean.reshape({1, 3, 1, 1})), sqrt(add(bn.running_var.reshape({1, 3, 1, 1}), 1e-3)));
  check_close(y, want, 1e-12, "eval output");
  CHECK(bn.num_batches_tracked.item() == 1);

  // TensorFlow's decay 0.99 is PyTorch's momentum 0.01; the presets' default is 0.01, eps 1e-3.
  const auto tf = nn::BatchNormOptions::from_tensorflow_decay(0.99);
  CHECK(*tf.momentum() == doctest::Approx(0.01).epsilon(1e-12));
  CHECK(tf.eps() == 1e-3);
  CHECK(*MaxVitConfig::preset("cifar").bn.momentum() == 0.01);
  CHECK(MaxVitConfig::preset("cifar").bn.eps() == 1e-3);
}

TEST_CASE("BatchNorm2d with momentum nullopt keeps the cumulative average of the batch statistics") {
  Generator gen(8);
  nn::BatchNorm2d bn(2, nn::BatchNormOptions::cumulative_average());
  bn.to(DType::Float64);
  bn.train();
  Tensor sum_mean = zeros({2}, DType::Float64), sum_var = zeros({2}, DType::Float64);
  for (int k = 1; k <= 3; ++k) {
    Tensor x = add(mul(randn({3, 2, 4, 4}, gen, DType::Float64), double(k)), double(k));
    sum_mean = add(sum_mean, mean(x, {0, 2, 3}));
    sum_var = add(sum_var, var(x, {0, 2, 3}, 1));
    bn(x);
    CHECK(bn.num_batches_tracked.item() == k);
    check_close(bn.running_mean, mul(sum_mean, 1.0 / k), 1e-13, "running_mean after " + std::to_string(k));
    check_close(bn.running_var, mul(sum_var, 1.0 / k), 1e-13, "running_var after " + std::to_string(k));
  }
}

// ---------------------------------------------------------------- non-square inputs

TEST_CASE("non-square input: forward and backward on 16x32 give the right shapes") {
  MaxVitConfig c = tiny(16, 32, {8, 16}, 4);  // stem 16x32, blocks 8x16 and 4x8; grid cells 2x4 and 1x2
  c.stem_channels = 8;
  MaxVit m(c, 3);
  Generator gen(4);
  Tensor x = randn({2, 3, 16, 32}, gen);
  Tensor logits = m(x);
  CHECK(logits.shape() == Shape{2, 3});
  cross_entropy(logits, Tensor::from_vector_i64({0, 2}, {2})).backward();
  for (auto& [name, p] : m.named_parameters()) {
    CAPTURE(name);
    REQUIRE(p.grad().defined());
    CHECK(p.grad().shape() == p.shape());
  }
  CHECK(error_of([&] { m(randn({2, 3, 32, 16}, gen)); }).find("expected input (N, 3, 16, 32)") != std::string::npos);
}

// Transposing the image is a symmetry of the whole model once every kernel is transposed and every
// bias table's (row, col) offsets swapped: convolutions, pooling and norms are symmetric, and a grid
// cell of (H/P) x (W/P) becomes (W/P) x (H/P). A model that mixed up H and W anywhere for H != W
// (the partition cells, the grid's lattice, the departition) would break it.
TEST_CASE("non-square input: the model on x^T with transposed weights equals the model on x") {
  const MaxVitConfig ca = tiny(8, 16, {4, 8}, 2), cb = tiny(16, 8, {4, 8}, 2);  // grid cells 2x4 / 1x2 and 4x2 / 2x1
  MaxVit a(ca, 5), b(cb, 6);
  a.to(DType::Float64);
  b.to(DType::Float64);
  scramble(a, 11);
  nn::NamedTensors wb;
  for (auto& [name, t] : a.state_dict())
    wb.emplace_back(name, t.dim() == 4     ? t.transpose(2, 3).contiguous()
                          : is_table(name) ? transpose_table(t, ca.partition_size)
                                           : t.clone());
  b.load_state_dict(wb);
  Generator gen(9);
  Tensor x = randn({3, 3, 8, 16}, gen, DType::Float64);
  Tensor y = Tensor::from_vector_i64({0, 2, 1}, {3});
  Tensor xt = x.transpose(2, 3).contiguous();

  for (bool train : {false, true}) {
    CAPTURE(train);
    a.train(train);
    b.train(train);
    a.zero_grad();
    b.zero_grad();
    Tensor la = a(x), lb = b(xt);
    check_close(lb, la, 1e-12, "logits");
    CHECK(std::fabs(la.to_vector()[0]) > 1e-2);  // a real signal, not the 0.02-init's near-zero logits
    cross_entropy(la, y).backward();
    cross_entropy(lb, y).backward();
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      const auto& [name, ta] = pa[i];
      const Tensor ga = ta.grad(), gb = pb[i].second.grad();
      const Tensor want = ga.dim() == 4 ? ga.transpose(2, 3) : is_table(name) ? transpose_table(ga, 2) : ga;
      check_close(gb, want, 1e-11, "grad." + name);
    }
  }
}

TEST_CASE("non-square input: gradients of a tiny float64 model agree with finite differences") {
  MaxVit m(tiny(8, 16, {4, 8}, 2), 12);  // blocks 4x8 (grid cell 2x4) and 2x4 (grid cell 1x2)
  m.to(DType::Float64);
  scramble(m, 13);
  m.train();  // BatchNorm on batch statistics: the harder backward
  Generator gen(14);
  Tensor x = randn({2, 3, 8, 16}, gen, DType::Float64);
  std::vector<Tensor> inputs{x};
  for (auto& [name, p] : m.named_parameters())
    if (is_table(name) || name == "stem.0.0.weight" || name == "blocks.1.layers.0.layers.MBconv.layers.conv_b.0.weight")
      inputs.push_back(p);
  REQUIRE(inputs.size() == 7);
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return m(in[0]); }, inputs, 1e-6, 1e-8, 1e-5);
}
