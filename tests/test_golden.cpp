// Parity with torchvision's MaxVit, from committed numbers: every golden case folder (weights, batch,
// expected, args.txt; see tests/golden/README.md) is run in-process through cli::run_step, the
// same code step_dump runs, and compared with shared/tools/check_step.py's rule. No Python is needed.
//
// Cases: tests/golden/* (committed, small: stem stride 2, partition 2, several heads, 3 stages,
// momentum 0.1, eps 1e-5, eval, float32 and float64) and $MAXGRAD_SHARED/golden/* when present.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "examples/common/step_flags.h"
#include "examples/common/run_step.h"
#include "maxgrad/nn/serialize/serialize.h"

using namespace mg;
namespace fs = std::filesystem;

namespace {

// check_step.py's TOLERANCES: expected dtype -> (rtol, atol); atol is times the tensor's max |expected|.
std::pair<double, double> tolerance(DType dt) {
  return dt == DType::Float64 ? std::make_pair(1e-6, 1e-9) : std::make_pair(2e-3, 1e-4);
}

std::string group_of(const std::string& name) {
  if (name == "logits" || name == "loss") return name;
  const std::string head = name.substr(0, name.find('.'));
  return head == "grad" || head == "state" ? head : "other";
}

struct Verdict {
  bool ok = true;
  double worst = 0;                      // worst rel over all floating tensors (check_step's worst_rel)
  std::map<std::string, double> groups;  // worst rel per group
  std::vector<std::string> problems;     // one line per failing tensor or name/dtype/shape mismatch
  void fail(const std::string& why) {
    ok = false;
    problems.push_back(why);
  }
};

// check_step.py's compare(): names, dtypes and shapes must match; floating elements need
// |o - e| <= rtol*|e| + atol*s with s = max|e| (1 when all zero), i.e. rel = |o-e| / (|e| + (atol/rtol)*s)
// <= rtol; integer tensors must be equal.
Verdict compare(const nn::NamedTensors& expected_list, const nn::NamedTensors& output_list) {
  std::map<std::string, Tensor> expected(expected_list.begin(), expected_list.end());
  std::map<std::string, Tensor> output(output_list.begin(), output_list.end());
  Verdict v;
  for (auto& [n, t] : expected)
    if (!output.count(n)) v.fail("missing tensor " + n);
  for (auto& [n, t] : output)
    if (!expected.count(n)) v.fail("unexpected tensor " + n);
  for (auto& [name, e] : expected) {
    auto it = output.find(name);
    if (it == output.end()) continue;
    const Tensor& o = it->second;
    if (o.dtype() != e.dtype()) {
      v.fail("dtype mismatch " + name + ": expected " + e.info() + ", got " + o.info());
      continue;
    }
    if (o.shape() != e.shape()) {
      v.fail("shape mismatch " + name + ": expected " + e.info() + ", got " + o.info());
      continue;
    }
    double& gw = v.groups[group_of(name)];
    if (e.numel() == 0) continue;
    if (e.dtype() == DType::Int64) {
      const Tensor ec = e.contiguous(), oc = o.contiguous();
      const int64_t *pe = ec.data<int64_t>(), *po = oc.data<int64_t>();
      int64_t bad = 0;
      for (int64_t i = 0; i < e.numel(); ++i) bad += pe[i] != po[i];
      if (bad) {
        v.fail("integer mismatch " + name + ": " + std::to_string(bad) + " element(s) differ");
        gw = v.worst = std::numeric_limits<double>::infinity();
      }
      continue;
    }
    const auto [rtol, atol] = tolerance(e.dtype());
    const std::vector<double> ev = e.to_vector(), ov = o.to_vector();
    double s = 0;
    for (double x : ev) s = std::max(s, std::fabs(x));
    if (!std::isfinite(s) || s == 0) s = 1;
    double worst = 0;
    size_t worst_i = 0, bad = 0;
    for (size_t i = 0; i < ev.size(); ++i) {
      double rel = ov[i] == ev[i] ? 0.0 : std::fabs(ov[i] - ev[i]) / (std::fabs(ev[i]) + (atol / rtol) * s);
      if (std::isnan(rel)) rel = std::numeric_limits<double>::infinity();
      if (rel > rtol) ++bad;
      if (rel > worst) worst = rel, worst_i = i;
    }
    gw = std::max(gw, worst);
    v.worst = std::max(v.worst, worst);
    if (bad) {
      std::ostringstream m;
      m.precision(17);
      m << name << ": " << bad << " element(s) out of tolerance, worst rel " << worst << " > " << rtol
        << " at flat index " << worst_i << " (expected " << ev[worst_i] << ", got " << ov[worst_i] << ")";
      v.fail(m.str());
    }
  }
  return v;
}

// The "x" and "y" of a batch file.
std::pair<Tensor, Tensor> load_batch(const std::string& path) {
  Tensor x, y;
  for (auto& [n, t] : serialize::load_tensors(path)) {
    if (n == "x") x = t;
    if (n == "y") y = t;
  }
  REQUIRE_MESSAGE((x.defined() && y.defined()), path, " must hold x and y");
  return {x, y};
}

struct Parsed {
  models::MaxVitConfig cfg;
  DType dtype;
  cli::StepOptions opt;
};

// args.txt parsed exactly as step_dump parses its command line.
Parsed parse_args(const fs::path& case_dir) {
  std::ifstream f(case_dir / "args.txt");
  REQUIRE_MESSAGE(f.good(), "cannot read ", (case_dir / "args.txt").string());
  std::vector<std::string> words;
  for (std::string w; f >> w;) words.push_back(w);
  cli::StepFlags sf;
  cli::Flags flags("step_dump", cli::StepFlags::kSynopsis);
  sf.add_to(flags);
  flags.parse(words);
  return {sf.config(), sf.model.tensor_dtype(), sf.options()};
}

Verdict run_case(const fs::path& dir) {
  const Parsed p = parse_args(dir);
  auto [x, y] = load_batch((dir / "batch.safetensors").string());
  nn::NamedTensors out =
      cli::run_step(p.cfg, p.dtype, serialize::load_tensors((dir / "weights.safetensors").string()), x, y, p.opt);
  return compare(serialize::load_tensors((dir / "expected.safetensors").string()), out);
}

std::vector<fs::path> case_dirs(const fs::path& root) {
  std::vector<fs::path> dirs;
  if (!fs::is_directory(root)) return dirs;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && fs::exists(entry.path() / "args.txt")) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

void check_all(const std::vector<fs::path>& dirs) {
  for (const fs::path& dir : dirs) {
    const std::string name = dir.filename().string();
    CAPTURE(name);
    Verdict v = run_case(dir);
    std::ostringstream line;
    line.precision(3);
    line << (v.ok ? "PASS" : "FAIL") << " case=" << name << " worst_rel=" << std::scientific << v.worst << " (";
    for (auto& [g, w] : v.groups) line << g << " " << w << (g == v.groups.rbegin()->first ? "" : ", ");
    line << ")";
    MESSAGE(line.str());
    std::string why;
    for (size_t i = 0; i < v.problems.size() && i < 10; ++i) why += "\n  " + v.problems[i];
    CHECK_MESSAGE(v.ok, "case ", name, why);
  }
}

fs::path source_dir() {
  const char* s = std::getenv("MAXGRAD_SOURCE");
  REQUIRE_MESSAGE(s != nullptr, "MAXGRAD_SOURCE must point at the project's source folder (CTest sets it)");
  return fs::path(s);
}

}  // namespace

TEST_CASE("golden: the committed cases in tests/golden match torchvision") {
  const auto dirs = case_dirs(source_dir() / "tests" / "golden");
  REQUIRE_MESSAGE(dirs.size() >= 6, "expected the committed cases in tests/golden, found ", dirs.size());
  check_all(dirs);
}

TEST_CASE("golden: the public cases in $MAXGRAD_SHARED/golden match torchvision") {
  const char* shared = std::getenv("MAXGRAD_SHARED");
  const fs::path root = shared ? fs::path(shared) / "golden" : fs::path();
  const auto dirs = case_dirs(root);
  if (dirs.empty()) {
    MESSAGE("skipped: no golden cases at ", (shared ? root.string() : std::string("$MAXGRAD_SHARED/golden")),
            " (set MAXGRAD_SHARED to the shared/ folder to run them)");
    return;
  }
  check_all(dirs);
}

// The comparison itself must catch what check_step.py catches (its --self-test, in miniature).
TEST_CASE("golden: the comparison rejects what check_step.py rejects") {
  const fs::path dir = source_dir() / "tests" / "golden" / "s2_p2_f64_train_3steps";
  const nn::NamedTensors expected = serialize::load_tensors((dir / "expected.safetensors").string());
  auto copy = [&] {
    nn::NamedTensors c;
    for (auto& [n, t] : expected) c.emplace_back(n, t.clone());
    return c;
  };
  auto find = [](nn::NamedTensors& ts, const std::string& name) -> Tensor& {
    for (auto& [n, t] : ts)
      if (n == name) return t;
    static Tensor none;
    FAIL("no tensor ", name);
    return none;
  };
  CHECK(compare(expected, copy()).ok);
  CHECK(compare(expected, copy()).worst == 0.0);

  SUBCASE("every element off by 0.1 * rtol passes") {
    nn::NamedTensors c = copy();
    for (auto& [n, t] : c)
      if (t.dtype() == DType::Float64) t.mul_(1 + 1e-7);
    CHECK(compare(expected, c).ok);
  }
  SUBCASE("one gradient element off by 1% fails") {
    nn::NamedTensors c = copy();
    Tensor& g = find(c, "grad.blocks.1.layers.0.layers.grid_attention.attn_layer.1.relative_position_bias_table");
    g.data<double>()[3] *= 1.01;
    const Verdict v = compare(expected, c);
    CHECK_FALSE(v.ok);
    REQUIRE(v.problems.size() == 1);
    CHECK(v.problems[0].find("relative_position_bias_table") != std::string::npos);
  }
  SUBCASE("a missing, an extra, a float32 and a reshaped tensor each fail") {
    nn::NamedTensors c = copy();
    c.erase(c.begin());
    CHECK_FALSE(compare(expected, c).ok);
    c = copy();
    c.emplace_back("debug.tmp", zeros({2}, DType::Float64));
    CHECK_FALSE(compare(expected, c).ok);
    c = copy();
    find(c, "logits") = find(c, "logits").to(DType::Float32);
    CHECK_FALSE(compare(expected, c).ok);
    c = copy();
    find(c, "loss") = find(c, "loss").reshape({1});
    CHECK_FALSE(compare(expected, c).ok);
  }
  SUBCASE("NaN and an off-by-one num_batches_tracked fail") {
    nn::NamedTensors c = copy();
    find(c, "logits").data<double>()[0] = std::nan("");
    CHECK_FALSE(compare(expected, c).ok);
    c = copy();
    find(c, "state.stem.0.1.num_batches_tracked").data<int64_t>()[0] += 1;
    CHECK_FALSE(compare(expected, c).ok);
  }
}
