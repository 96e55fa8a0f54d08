// Mixup / CutMix (data/mixup.h) against timm's batch mode: the mixed images and targets of a given draw
// against timm's code run by tests/golden/recipe/make_recipe.py (tests/golden/recipe/mixup.safetensors),
// the Beta and Gamma samplers' moments, the draw's frequencies, and determinism.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "helpers.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/data/mixup.h"
#include "maxgrad/nn/serialize/serialize.h"

using namespace mg;
using data::MixDraw;
using data::MixupOptions;

namespace {

std::map<std::string, Tensor> fixture(const std::string& file) { return testing::recipe_fixture(file); }

template <typename T> std::vector<T> as(const Tensor& t) {
  std::vector<T> out;
  for (double v : t.to_vector()) out.push_back(static_cast<T>(v));
  return out;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}
template <typename T> std::vector<double> wide(const std::vector<T>& v) { return {v.begin(), v.end()}; }

struct Moments {
  double mean = 0, var = 0;
};
template <typename F> Moments moments(int n, F draw) {
  double s = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double v = draw();
    s += v, s2 += v * v;
  }
  const double mean = s / n;
  return {mean, s2 / n - mean * mean};
}

}  // namespace

TEST_CASE("apply_mix of a given draw equals timm's mixed batch and targets") {
  auto g = fixture("mixup.safetensors");
  const int64_t n = 4, c = 3, h = 6, w = 8;
  MixupOptions opts;
  opts.num_classes = static_cast<int64_t>(g.at("num_classes").item());
  opts.label_smoothing = g.at("label_smoothing").item();
  const std::vector<int64_t> y = {3, 0, 4, 0};
  REQUIRE(g.at("y").to_vector() == std::vector<double>{3, 0, 4, 0});
  for (const char* name : {"mixup", "cutmix", "cutmix_clipped", "cutmix_uncorrected", "plain"}) {
    const std::string k = name;
    CAPTURE(k);
    const double lam_drawn = g.at(k + ".lam_drawn").item();
    const std::vector<double> box = g.at(k + ".box").to_vector(), centre = g.at(k + ".center").to_vector();
    MixDraw d;
    if (k == "mixup") d = MixDraw{true, false, lam_drawn, 0, 0, 0, 0};
    if (k.rfind("cutmix", 0) == 0) {
      d = data::cutmix_box(lam_drawn, static_cast<int64_t>(centre[0]), static_cast<int64_t>(centre[1]), h, w,
                           k != "cutmix_uncorrected");
      CHECK(d.cutmix);
      CHECK(std::vector<double>{double(d.y0), double(d.y1), double(d.x0), double(d.x1)} == box);
    }
    CHECK(d.lam == g.at(k + ".lam").item());  // exactly: the same double arithmetic

    std::vector<float> x = as<float>(g.at("x")), targets(static_cast<size_t>(n * opts.num_classes));
    data::apply_mix(d, x.data(), n, c, h, w, y.data(), opts, targets.data());
    const double x_err = max_abs_diff(wide(x), g.at(k + ".x").to_vector());
    const double t_err = max_abs_diff(wide(targets), g.at(k + ".targets").to_vector());
    CHECK(x_err <= 5e-7);  // float32 rounding of lam x_i + (1 - lam) x_j (cutmix copies: exact)
    CHECK(t_err <= 1e-7);

    std::vector<double> xd = as<double>(g.at("x")), td(targets.size());  // float64 batches work the same way
    data::apply_mix(d, xd.data(), n, c, h, w, y.data(), opts, td.data());
    CHECK(max_abs_diff(xd, g.at(k + ".x").to_vector()) <= 5e-7);
    CHECK(max_abs_diff(td, g.at(k + ".targets").to_vector()) <= 1e-7);
  }
}

TEST_CASE("cutmix images: inside the box from the mirror image, outside untouched; odd batches pair the middle") {
  const int64_t n = 3, c = 1, h = 4, w = 5;
  std::vector<double> x(static_cast<size_t>(n * c * h * w)), targets(static_cast<size_t>(n * 2));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
  const std::vector<double> orig = x;
  const std::vector<int64_t> y = {0, 1, 1};
  MixupOptions opts;
  opts.num_classes = 2, opts.label_smoothing = 0;
  const MixDraw d = data::cutmix_box(0.5, 1, 2, h, w);  // cut 2x3 -> rows 0..2, columns 1..3
  CHECK(d.y0 == 0);
  CHECK(d.y1 == 2);
  CHECK(d.x0 == 1);
  CHECK(d.x1 == 3);
  CHECK(d.lam == doctest::Approx(1 - 4.0 / 20));
  data::apply_mix(d, x.data(), n, c, h, w, y.data(), opts, targets.data());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < h; ++r)
      for (int64_t col = 0; col < w; ++col) {
        const bool in_box = r >= d.y0 && r < d.y1 && col >= d.x0 && col < d.x1;
        const int64_t src = in_box ? n - 1 - i : i;
        CHECK(x[static_cast<size_t>((i * h + r) * w + col)] == orig[static_cast<size_t>((src * h + r) * w + col)]);
      }
  const std::vector<double> want = {0.8, 0.2, 0, 1, 0.2, 0.8};  // the middle image is its own pair
  CHECK(max_abs_diff(targets, want) < 1e-15);
}

TEST_CASE("Gamma and Beta samplers have the right moments") {
  data::SplitMix64 rng(12345);
  const int n = 200000;
  for (double a : {0.3, 0.8, 1.0, 3.5}) {
    CAPTURE(a);
    const Moments m = moments(n, [&] { return data::sample_gamma(rng, a); });
    CHECK(m.mean == doctest::Approx(a).epsilon(0.01));  // Gamma(a, 1): mean a, variance a
    CHECK(m.var == doctest::Approx(a).epsilon(0.03));
  }
  for (double a : {0.2, 0.8, 1.0, 2.5}) {
    CAPTURE(a);
    const Moments m = moments(n, [&] { return data::sample_beta(rng, a, a); });
    CHECK(std::fabs(m.mean - 0.5) < 0.003);  // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1))
    CHECK(std::fabs(m.var - 1 / (4 * (2 * a + 1))) < 0.0015);
  }
  // Beta(1, 1) is uniform: its distribution function at a few points
  std::vector<double> v(n);
  for (double& x : v) x = data::sample_beta(rng, 1, 1);
  for (double q : {0.05, 0.25, 0.5, 0.9}) {
    const double below = static_cast<double>(std::count_if(v.begin(), v.end(), [&](double x) { return x < q; })) / n;
    CHECK(std::fabs(below - q) < 0.004);
  }
  // Beta(2, 5): mean 2/7, variance 10 / (49 * 8)
  const Moments m = moments(n, [&] { return data::sample_beta(rng, 2, 5); });
  CHECK(std::fabs(m.mean - 2.0 / 7) < 0.002);
  CHECK(std::fabs(m.var - 10.0 / 392) < 0.001);
}

TEST_CASE("draw_mix: prob and switch_prob frequencies, lam's distribution, consistent boxes") {
  MixupOptions opts;
  opts.prob = 0.6, opts.switch_prob = 0.3;
  const int n = 20000;
  int mixed = 0, cutmix = 0;
  double lam_sum = 0, lam_sq = 0;
  int mixups = 0;
  for (int b = 0; b < n; ++b) {
    const MixDraw d = data::draw_mix(opts, 7, 1, b, 32, 24);
    if (!d.mixed) {
      CHECK(d.lam == 1.0);
      continue;
    }
    ++mixed;
    if (d.cutmix) {
      ++cutmix;
      REQUIRE((0 <= d.y0 && d.y0 <= d.y1 && d.y1 <= 32 && 0 <= d.x0 && d.x0 <= d.x1 && d.x1 <= 24));
      CHECK(d.lam == 1.0 - static_cast<double>((d.y1 - d.y0) * (d.x1 - d.x0)) / (32.0 * 24.0));
    } else {
      ++mixups, lam_sum += d.lam, lam_sq += d.lam * d.lam;
    }
  }
  CHECK(std::fabs(static_cast<double>(mixed) / n - 0.6) < 0.015);
  CHECK(std::fabs(static_cast<double>(cutmix) / mixed - 0.3) < 0.02);
  const double mean = lam_sum / mixups, var = lam_sq / mixups - mean * mean;
  CHECK(std::fabs(mean - 0.5) < 0.01);
  CHECK(std::fabs(var - 1 / (4 * (2 * 0.8 + 1))) < 0.005);  // Beta(0.8, 0.8)

  auto count = [&](const MixupOptions& o, bool want_cutmix) {
    int k = 0;
    for (int b = 0; b < 500; ++b) {
      const MixDraw d = data::draw_mix(o, 3, 0, b, 16, 16);
      k += d.mixed && d.cutmix == want_cutmix;
    }
    return k;
  };
  MixupOptions only_mixup, only_cutmix, never;
  only_mixup.cutmix_alpha = 0, only_cutmix.mixup_alpha = 0, never.prob = 0;
  CHECK(count(only_mixup, false) == 500);
  CHECK(count(only_cutmix, true) == 500);
  CHECK(count(never, false) + count(never, true) == 0);
}

TEST_CASE("draw_mix is a function of (seed, epoch, batch_index)") {
  const MixupOptions opts;
  auto same = [](const MixDraw& a, const MixDraw& b) {
    return a.mixed == b.mixed && a.cutmix == b.cutmix && a.lam == b.lam && a.y0 == b.y0 && a.y1 == b.y1 &&
           a.x0 == b.x0 && a.x1 == b.x1;
  };
  int differ_batch = 0, differ_epoch = 0, differ_seed = 0;
  for (int b = 0; b < 50; ++b) {
    const MixDraw d = data::draw_mix(opts, 11, 2, b, 32, 32);
    CHECK(same(d, data::draw_mix(opts, 11, 2, b, 32, 32)));
    differ_batch += !same(d, data::draw_mix(opts, 11, 2, b + 1, 32, 32));
    differ_epoch += !same(d, data::draw_mix(opts, 11, 3, b, 32, 32));
    differ_seed += !same(d, data::draw_mix(opts, 12, 2, b, 32, 32));
  }
  CHECK(differ_batch == 50);  // lam is continuous: any two streams differ
  CHECK(differ_epoch == 50);
  CHECK(differ_seed == 50);
}

TEST_CASE("mixup options and inputs are checked with messages that name the field") {
  MixupOptions o;
  o.mixup_alpha = 0, o.cutmix_alpha = 0;
  CHECK_THROWS_MG(data::draw_mix(o, 0, 0, 0, 8, 8), "mixup", "mixup_alpha or cutmix_alpha must be > 0");
  o = MixupOptions(), o.switch_prob = 1.5;
  CHECK_THROWS_MG(data::check_mixup_options(o), "switch_prob", "1.5");
  o = MixupOptions(), o.num_classes = 0;
  CHECK_THROWS_MG(data::check_mixup_options(o), "num_classes");
  o = MixupOptions();
  std::vector<float> x(2 * 1 * 2 * 2), t(2 * 10);
  const std::vector<int64_t> bad = {1, 10};
  CHECK_THROWS_MG(data::apply_mix(MixDraw{}, x.data(), 2, 1, 2, 2, bad.data(), o, t.data()), "apply_mix", "y[1] = 10",
                  "num_classes 10");
  const std::vector<int64_t> y = {1, 2};
  CHECK_THROWS_MG(data::apply_mix(MixDraw{true, true, 0.5, 0, 3, 0, 1}, x.data(), 2, 1, 2, 2, y.data(), o, t.data()),
                  "apply_mix", "does not fit a 2x2 image");
  CHECK_THROWS_MG(data::cutmix_box(0.5, 4, 0, 4, 4), "cutmix_box", "outside the 4x4 image");
}
