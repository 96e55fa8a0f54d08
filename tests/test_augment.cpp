// Tests of the stronger augmentation: TrivialAugmentWide's and RandAugment's ops against torchvision's
// outputs (tests/golden/augment, made by gen_augment.py there; no PyTorch needed here), the draws'
// statistics, random erasing, and the loader: deterministic whatever the thread count, exactly the old
// batches with the new options off, and no draw moved by switching a transform on.
#include <doctest/doctest.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "maxgrad/data/auto_augment.h"
#include "maxgrad/data/image_set.h"
#include "maxgrad/data/loader.h"
#include "maxgrad/data/random_erasing.h"
#include "maxgrad/data/synthetic.h"
#include "maxgrad/data/transforms.h"

namespace fs = std::filesystem;
using namespace mg::data;

namespace {

fs::path golden_dir() {
  const char* s = std::getenv("MAXGRAD_SOURCE");
  REQUIRE_MESSAGE(s != nullptr, "MAXGRAD_SOURCE must point at the project's source folder (CTest sets it)");
  return fs::path(s) / "tests" / "golden" / "augment";
}

AugmentOp op_named(const std::string& name) {
  for (int64_t k = 0; k < kNumAugmentOps; ++k)
    if (name == op_name(static_cast<AugmentOp>(k))) return static_cast<AugmentOp>(k);
  FAIL("no op named " << name);
  return AugmentOp::identity;
}

struct GoldenImage {
  int64_t c = 0, h = 0, w = 0;
  std::vector<uint8_t> pixels;
};
struct GoldenCase {
  std::string image, op;
  double magnitude = 0;
  std::vector<uint8_t> expected;
};

// cases.txt lists the images, then the cases; cases.bin holds their bytes in the same order.
void read_golden(std::map<std::string, GoldenImage>& images, std::vector<GoldenCase>& cases) {
  std::ifstream txt(golden_dir() / "cases.txt"), bin(golden_dir() / "cases.bin", std::ios::binary);
  REQUIRE_MESSAGE(txt, "missing tests/golden/augment/cases.txt (run gen_augment.py there)");
  REQUIRE(bin);
  const auto read_bytes = [&](int64_t n) {
    std::vector<uint8_t> out(static_cast<size_t>(n));
    bin.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
    REQUIRE(bin.gcount() == n);
    return out;
  };
  for (std::string line; std::getline(txt, line);) {
    std::istringstream in(line);
    std::string kind;
    in >> kind;
    if (kind == "image") {
      std::string name;
      GoldenImage img;
      in >> name >> img.c >> img.h >> img.w;
      img.pixels = read_bytes(img.c * img.h * img.w);
      images[name] = img;
    } else if (kind == "case") {
      GoldenCase c;
      std::string magnitude;
      in >> c.image >> c.op >> magnitude;
      c.magnitude = std::strtod(magnitude.c_str(), nullptr);  // repr() of a Python float: exact
      const GoldenImage& img = images.at(c.image);
      c.expected = read_bytes(img.c * img.h * img.w);
      cases.push_back(c);
    }
  }
  REQUIRE(bin.peek() == std::char_traits<char>::eof());
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("augment ops: every golden case equals torchvision's output exactly") {
  std::map<std::string, GoldenImage> images;
  std::vector<GoldenCase> cases;
  read_golden(images, cases);
  REQUIRE(cases.size() >= 40);
  std::map<std::string, int> per_op;
  for (const GoldenCase& gc : cases) {
    const GoldenImage& img = images.at(gc.image);
    std::vector<uint8_t> out = img.pixels;
    apply_op(out.data(), img.c, img.h, img.w, op_named(gc.op), gc.magnitude);
    int64_t differing = 0, worst = 0, first = -1;
    for (size_t i = 0; i < out.size(); ++i) {
      const int64_t d = std::abs(int64_t{out[i]} - gc.expected[i]);
      if (d != 0 && first < 0) first = static_cast<int64_t>(i);
      differing += d != 0;
      worst = std::max(worst, d);
    }
    CHECK_MESSAGE(differing == 0, gc.op, "(", gc.magnitude, ") on image ", gc.image, ": ", differing,
                  " values differ, by up to ", worst, "; first at flat index ", first);
    ++per_op[gc.op];
  }
  // Every op is covered, and the case set checks something: a no-op would not match these.
  for (int64_t k = 1; k < kNumAugmentOps; ++k) CHECK(per_op[op_name(static_cast<AugmentOp>(k))] >= 1);
  for (const GoldenCase& gc : cases)
    if (gc.op == "Rotate" || gc.op == "Equalize")
      CHECK_MESSAGE(gc.expected != images.at(gc.image).pixels, gc.op, " ", gc.magnitude, " on ", gc.image);
}

TEST_CASE("augment ops: torchvision's op spaces, order, signs and magnitude tables") {
  std::ifstream txt(golden_dir() / "magnitudes.txt");
  REQUIRE(txt);
  int64_t lines = 0, values = 0;
  std::map<std::string, int64_t> position;
  for (std::string line; std::getline(txt, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string space, name;
    int is_signed = 0;
    in >> space >> name >> is_signed;
    const bool wide = space == "wide";
    const AugmentOp op = static_cast<AugmentOp>(position[space]++);  // the op draw indexes this order
    CHECK(name == op_name(op));
    CHECK(is_signed == op_is_signed(op));
    std::vector<double> table;
    for (double v; in >> v;) table.push_back(v);
    CHECK(op_has_magnitude(op) == !table.empty());
    for (size_t bin = 0; bin < table.size(); ++bin) {
      const double mine = op_magnitude(op, static_cast<int64_t>(bin), kNumMagnitudeBins, wide, 32, 32);
      CHECK_MESSAGE(static_cast<float>(mine) == static_cast<float>(table[bin]), space, " ", name, " bin ", bin, ": ",
                    mine, " vs torch's ", table[bin]);
      ++values;
    }
    ++lines;
  }
  CHECK(lines == 2 * kNumAugmentOps);
  CHECK(values == 22 * kNumMagnitudeBins);
  // RandAugment's translations scale with the image: 150/331 of the width (x) or height (y).
  CHECK(op_magnitude(AugmentOp::translate_x, 30, 31, false, 20, 64) == doctest::Approx(150.0 / 331.0 * 64));
  CHECK(op_magnitude(AugmentOp::translate_y, 30, 31, false, 20, 64) == doctest::Approx(150.0 / 331.0 * 20));
}

TEST_CASE("augment ops: a few properties by hand") {
  const std::vector<uint8_t> ramp = [] {
    std::vector<uint8_t> v(3 * 8 * 8);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(i * 5 % 256);
    return v;
  }();
  auto img = ramp;
  rotate(img.data(), 3, 8, 8, 360);  // a full turn is the identity, pixel for pixel
  CHECK(img == ramp);
  img = ramp;
  affine(img.data(), 3, 8, 8, 0, {2, 0}, 1, {0, 0});  // 2 pixels to the right, zeros come in on the left
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x)
        CHECK(img[static_cast<size_t>((c * 8 + y) * 8 + x)] ==
              (x < 2 ? 0 : ramp[static_cast<size_t>((c * 8 + y) * 8 + x - 2)]));
  img = ramp;
  posterize(img.data(), 3, 8, 8, 3);
  for (size_t i = 0; i < img.size(); ++i) CHECK(img[i] == (ramp[i] & 0xE0));
  img = ramp;
  adjust_brightness(img.data(), 3, 8, 8, 1.0);  // factor 1: img * 1 + 0 exactly
  CHECK(img == ramp);
  CHECK_THROWS_WITH_AS(equalize(img.data(), 2, 8, 8),
                       doctest::Contains("equalize: 2 channels; torchvision defines it for 1 (grey) or 3 (RGB)"),
                       std::invalid_argument);
  CHECK_THROWS_AS(posterize(img.data(), 3, 8, 8, 9), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("augment draws: TrivialAugmentWide's ops, bins and signs are uniform") {
  const int n = 140000;
  std::vector<int> ops(kNumAugmentOps), bins(kNumMagnitudeBins);
  int with_bin = 0, signed_draws = 0, negative = 0;
  for (int i = 0; i < n; ++i) {
    const std::vector<OpDraw> d = draw_auto_augment(AutoAugment::trivial_augment_wide, 5, 0, i, 32, 32);
    REQUIRE(d.size() == 1);
    const OpDraw& o = d[0];
    ++ops[static_cast<size_t>(o.op)];
    if (op_has_magnitude(o.op)) {
      ++bins[static_cast<size_t>(o.bin)], ++with_bin;
      CHECK(std::abs(o.magnitude) == op_magnitude(o.op, o.bin, kNumMagnitudeBins, true, 32, 32));
    } else {
      CHECK((o.bin == 0 && o.magnitude == 0));
    }
    if (op_is_signed(o.op)) signed_draws += 1, negative += o.negative;
    CHECK((o.negative ? op_is_signed(o.op) : true));
    CHECK(o.negative == std::signbit(o.magnitude));  // bin 0 of a signed op gives -0.0
  }
  // Each count within 8% of its expectation: 6 standard deviations for the ops, 4.8 for the bins.
  for (int k = 0; k < kNumAugmentOps; ++k)
    CHECK_MESSAGE(std::abs(ops[static_cast<size_t>(k)] - n / 14.0) < 0.08 * n / 14.0,
                  op_name(static_cast<AugmentOp>(k)));
  for (int b = 0; b < kNumMagnitudeBins; ++b)
    CHECK_MESSAGE(std::abs(bins[static_cast<size_t>(b)] - with_bin / 31.0) < 0.08 * with_bin / 31.0, "bin ", b);
  CHECK(std::abs(negative - signed_draws / 2.0) < 0.02 * signed_draws);
  // The same (seed, epoch, index) draws the same; another epoch draws afresh.
  int same = 0;
  for (int i = 0; i < 1000; ++i) {
    const OpDraw a = draw_auto_augment(AutoAugment::trivial_augment_wide, 5, 0, i, 32, 32)[0];
    const OpDraw b = draw_auto_augment(AutoAugment::trivial_augment_wide, 5, 0, i, 32, 32)[0];
    const OpDraw c = draw_auto_augment(AutoAugment::trivial_augment_wide, 5, 1, i, 32, 32)[0];
    CHECK((a.op == b.op && a.bin == b.bin && a.negative == b.negative));
    same += a.op == c.op && a.bin == c.bin && a.negative == c.negative;
  }
  CHECK(same < 50);
}

TEST_CASE("augment draws: RandAugment draws num_ops ops at its fixed magnitude") {
  const int n = 28000;
  std::vector<int> ops(kNumAugmentOps);
  for (int i = 0; i < n; ++i) {
    const std::vector<OpDraw> d = draw_auto_augment(AutoAugment::rand_augment, 9, 2, i, 32, 32, 3, 9);
    REQUIRE(d.size() == 3);
    for (const OpDraw& o : d) {
      ++ops[static_cast<size_t>(o.op)];
      CHECK(o.bin == (op_has_magnitude(o.op) ? 9 : 0));
      CHECK(std::abs(o.magnitude) == (op_has_magnitude(o.op) ? op_magnitude(o.op, 9, 31, false, 32, 32) : 0.0));
    }
  }
  for (int k = 0; k < kNumAugmentOps; ++k)
    CHECK(std::abs(ops[static_cast<size_t>(k)] - 3.0 * n / 14) < 0.08 * 3 * n / 14);
  CHECK(draw_auto_augment(AutoAugment::none, 9, 2, 0, 32, 32).empty());
  CHECK(draw_auto_augment(AutoAugment::rand_augment, 9, 2, 0, 32, 32, 0, 9).empty());
}

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("random erasing: chosen with probability p, area in [0.02, 0.33] of the image, inside it") {
  const int n = 20000;
  const double p = 0.25;
  int erased = 0, strictly_inside_scale = 0;
  double area_sum = 0;
  for (int i = 0; i < n; ++i) {
    const ErasingBox b = draw_erasing(3, 0, i, p, 32, 32);
    if (!b.erase) continue;
    ++erased;
    CHECK((b.top >= 0 && b.left >= 0 && b.top + b.height <= 32 && b.left + b.width <= 32));
    CHECK((b.height < 32 && b.width < 32));
    // h and w are rounded from sqrt(area * ratio) and sqrt(area / ratio), so h * w can miss the drawn area
    // by up to (h + w + 1) / 2 + 1/4 pixels.
    const double area = static_cast<double>(b.height * b.width), slack = (b.height + b.width + 1) / 2.0 + 0.25;
    CHECK(area >= 0.02 * 1024 - slack);
    CHECK(area <= 0.33 * 1024 + slack);
    strictly_inside_scale += area >= 0.02 * 1024 && area <= 0.33 * 1024;
    area_sum += area / 1024;
  }
  CHECK(std::abs(erased - p * n) < 4 * std::sqrt(n * p * (1 - p)));
  CHECK(strictly_inside_scale > 0.97 * erased);
  MESSAGE("erased ", erased, " of ", n, " (p ", p, "), mean area fraction ", area_sum / erased);
  CHECK((area_sum / erased > 0.15 && area_sum / erased < 0.19));  // about (0.02 + 0.33) / 2, less the misfits
  // p = 1 erases unless 10 draws in a row do not fit (a tall or wide box at the largest areas)
  int always = 0;
  for (int i = 0; i < 2000; ++i) always += draw_erasing(3, 0, i, 1.0, 32, 32).erase;
  CHECK(always > 1990);
  for (int i = 0; i < 2000; ++i) CHECK_FALSE(draw_erasing(3, 0, i, 0.0, 32, 32).erase);
}

TEST_CASE("random erasing: zeros or standard normal values in the box, nothing outside") {
  const ErasingBox box{true, 3, 5, 10, 7};
  std::vector<float> img(3 * 16 * 16, 2.5f);
  erase(img.data(), 3, 16, 16, box, ErasingValue::zero, 0, 0, 0);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x) {
        const bool in = y >= 3 && y < 13 && x >= 5 && x < 12;
        CHECK(img[static_cast<size_t>((c * 16 + y) * 16 + x)] == (in ? 0.f : 2.5f));
      }
  const ErasingBox big{true, 0, 0, 100, 100};
  std::vector<double> noise(3 * 100 * 100, 7.0), again(noise.size(), 7.0);
  erase(noise.data(), 3, 100, 100, big, ErasingValue::random, 1, 2, 3);
  erase(again.data(), 3, 100, 100, big, ErasingValue::random, 1, 2, 3);
  CHECK(noise == again);
  double sum = 0, sq = 0;
  for (double v : noise) sum += v, sq += v * v;
  const double mean = sum / static_cast<double>(noise.size()),
               var = sq / static_cast<double>(noise.size()) - mean * mean;
  CHECK(std::abs(mean) < 0.03);  // 30000 values: standard error 0.006
  CHECK(std::abs(var - 1) < 0.04);
}

// ---------------------------------------------------------------------------------------------------------
namespace {

std::vector<Batch> whole_epoch(DataLoader& loader, int64_t epoch) {
  std::vector<Batch> out;
  loader.start_epoch(epoch);
  for (Batch b; loader.next(b);) out.push_back(b);
  return out;
}

LoaderOptions strong(uint64_t seed) {
  LoaderOptions o;
  o.batch_size = 32;
  o.seed = seed;
  o.augment = true;
  o.auto_augment = AutoAugment::trivial_augment_wide;
  o.erasing_prob = 0.5;
  return o;
}

}  // namespace

TEST_CASE("augment loader: default options give exactly the batches of the crop + flip pipeline") {
  const ImageSet set = make_synthetic(96, 4);
  LoaderOptions o;
  o.batch_size = 32, o.augment = true, o.seed = 21;
  DataLoader loader(set, o);
  const std::vector<Batch> batches = whole_epoch(loader, 3);
  // The old pipeline written out with the functions it has always used: load, crop_flip, normalize.
  const ImageShape s = set.shape();
  std::vector<uint8_t> raw(static_cast<size_t>(s.numel())), cropped(raw.size());
  std::vector<float> want(raw.size());
  for (const Batch& b : batches)
    for (int64_t k = 0; k < b.n; ++k) {
      const int64_t index = b.indices[static_cast<size_t>(k)];
      set.load(index, raw.data());
      crop_flip(raw.data(), 3, 32, 32, 4, draw_augment(21, 3, index, 4), cropped.data());
      normalize(cropped.data(), 3, 32, 32, kCifar10Norm, want.data());
      CHECK(std::equal(want.begin(), want.end(), b.x.begin() + k * s.numel()));
    }
}

TEST_CASE("augment loader: same batches with 1, 2 and 4 threads, for both policies and erasing") {
  const ImageSet set = make_synthetic(160, 2);
  for (const AutoAugment policy : {AutoAugment::trivial_augment_wide, AutoAugment::rand_augment}) {
    LoaderOptions o = strong(17);
    o.auto_augment = policy;
    o.erasing_value = policy == AutoAugment::rand_augment ? ErasingValue::random : ErasingValue::zero;
    std::vector<std::vector<Batch>> runs;
    for (const int threads : {1, 2, 4}) {
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));
      DataLoader loader(set, o);
      runs.push_back(whole_epoch(loader, 1));
    }
    for (size_t r = 1; r < runs.size(); ++r) {
      REQUIRE(runs[r].size() == runs[0].size());
      for (size_t k = 0; k < runs[0].size(); ++k) CHECK(runs[r][k].x == runs[0][k].x);
    }
  }
}

TEST_CASE("augment loader: switching a transform on moves no other draw") {
  const ImageSet set = make_synthetic(128, 3);
  LoaderOptions base = strong(8);
  base.erasing_prob = 0;
  LoaderOptions erasing = base;
  erasing.erasing_prob = 0.5;
  LoaderOptions crop_only = base;
  crop_only.auto_augment = AutoAugment::none;
  DataLoader a(set, base), b(set, erasing), c(set, crop_only);
  const std::vector<Batch> without = whole_epoch(a, 2), with = whole_epoch(b, 2), plain = whole_epoch(c, 2);
  const int64_t numel = 3 * 32 * 32;
  int64_t erased_images = 0, identity_images = 0, changed_images = 0;
  for (size_t k = 0; k < without.size(); ++k) {
    CHECK(with[k].indices == without[k].indices);
    for (int64_t i = 0; i < without[k].n; ++i) {
      const int64_t index = without[k].indices[static_cast<size_t>(i)];
      const float* x0 = without[k].x.data() + i * numel;
      const float* x1 = with[k].x.data() + i * numel;
      // Erasing on: the same image outside the box (same crop, flip and op), zeros inside.
      const ErasingBox box = draw_erasing(8, 2, index, 0.5, 32, 32);
      erased_images += box.erase;
      bool same = true;
      for (int64_t ch = 0; ch < 3; ++ch)
        for (int64_t y = 0; y < 32; ++y)
          for (int64_t x = 0; x < 32; ++x) {
            const int64_t at = (ch * 32 + y) * 32 + x;
            const bool in =
                box.erase && y >= box.top && y < box.top + box.height && x >= box.left && x < box.left + box.width;
            same &= x1[at] == (in ? 0.f : x0[at]);
          }
      CHECK_MESSAGE(same, "image ", index);
      // TrivialAugmentWide on: the crop is unchanged, so where it drew Identity the image is the plain one.
      const float* xp = plain[k].x.data() + i * numel;
      const bool equal = std::equal(x0, x0 + numel, xp);
      if (draw_auto_augment(AutoAugment::trivial_augment_wide, 8, 2, index, 32, 32)[0].op == AugmentOp::identity) {
        ++identity_images;
        CHECK(equal);
      } else {
        changed_images += !equal;
      }
    }
  }
  CHECK(erased_images > 40);
  CHECK(identity_images > 2);
  CHECK(changed_images > 90);  // almost every other op changes the image
}

TEST_CASE("augment loader: options are checked, with their names and ranges") {
  const ImageSet set = make_synthetic(10, 0);
  const auto error_of = [&](LoaderOptions o) -> std::string {
    try {
      DataLoader loader(set, o);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  LoaderOptions o;
  o.erasing_prob = 1.5;
  CHECK(error_of(o) == "DataLoader: erasing_prob must be in [0, 1], got 1.500000");
  o.erasing_prob = std::nan("");
  CHECK(error_of(o).find("erasing_prob must be in [0, 1]") != std::string::npos);
  o = LoaderOptions{};
  o.rand_augment_magnitude = 31;
  CHECK(error_of(o) == "DataLoader: rand_augment_magnitude must be in [0, 30] (a magnitude bin), got 31");
  o = LoaderOptions{};
  o.rand_augment_ops = -1;
  CHECK(error_of(o) == "DataLoader: rand_augment_ops must be in [0, 16], got -1");
  ImageSet two(ImageShape{2, 4, 4}, {"a"});
  o = LoaderOptions{};
  o.auto_augment = AutoAugment::rand_augment;
  CHECK_THROWS_WITH_AS(DataLoader(two, o), doctest::Contains("auto_augment needs 1 (grey) or 3 (RGB) channels"),
                       std::invalid_argument);
  o.auto_augment = AutoAugment::none;
  CHECK_NOTHROW(DataLoader(two, o));
}

// Not run by default (no time limits in tests); run it with
//   build/release/tests/test_augment -tc='augment throughput*' --no-skip
TEST_CASE("augment throughput: 50000 images, crop + flip against TrivialAugmentWide + erasing" * doctest::skip()) {
  const ImageSet set = make_synthetic(5000, 0);
  const auto images_per_second = [&](LoaderOptions o) {
    o.batch_size = 250, o.num_prefetch = 0;
    DataLoader loader(set, o);
    const auto start = std::chrono::steady_clock::now();
    int64_t images = 0;
    for (int64_t epoch = 0; epoch < 10; ++epoch) {
      loader.start_epoch(epoch);
      for (Batch b; loader.next(b);) images += b.n;
    }
    return static_cast<double>(images) /
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  LoaderOptions plain;
  plain.augment = true;
  LoaderOptions trivial = plain;
  trivial.auto_augment = AutoAugment::trivial_augment_wide;
  LoaderOptions trivial_erasing = trivial;
  trivial_erasing.erasing_prob = 0.25;
  LoaderOptions rand = plain;
  rand.auto_augment = AutoAugment::rand_augment;
  rand.erasing_prob = 0.25;
  for (const int threads : {1, 2}) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));
    MESSAGE(threads, " thread(s), images/s: crop + flip ", images_per_second(plain), "; + TrivialAugmentWide ",
            images_per_second(trivial), "; + TrivialAugmentWide + erasing 0.25 ", images_per_second(trivial_erasing),
            "; + RandAugment(2, 9) + erasing 0.25 ", images_per_second(rand));
  }
}
