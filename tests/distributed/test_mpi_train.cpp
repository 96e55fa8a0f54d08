// train_cifar under `mpirun -np 2` on this machine, against one process (docs/distributed.md):
//   - one step of 2 ranks x 64 images with --sync-bn equals one step of 1 process x 128 images in
//     the loss, every averaged gradient and every BatchNorm running statistic, to float rounding;
//   - without --sync-bn the loss and gradients differ (each rank normalises its own 64 images),
//     and the running statistics kept are rank 0's: those of 1 process on rank 0's 64 images;
//   - a whole epoch (training split by rank, evaluation split by rank and summed) logs the same
//     numbers as one process, also when resumed from 1 process onto 2 ranks and back;
//   - a 2-rank run stopped and resumed on 2 ranks ends bitwise where an uninterrupted one does.
// Exits 77 (CTest: skipped) with the reason when this build has no MPI or no mpirun was found.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "maxgrad/nn/dist/distributed.h"
#include "maxgrad/nn/serialize/serialize.h"
#include "run_program.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using mg::nn::NamedTensors;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

using mg::testing::quote;
using mg::testing::read_text;
using mg::testing::Result;
using mg::testing::TempDir;

// The tiny model of tests/test_train.cpp, no drop-path (its masks are drawn per rank), one thread per
// process (2 ranks on 2 cores), 300 synthetic images: 2 steps of 128 per epoch.
const std::vector<std::string> kRun = {
    "--synthetic", "--subset",         "30",       "--eval-subset",  "5",     "--epochs",
    "1",           "--batch",          "128",      "--threads",      "1",     "--stochastic-depth",
    "0",           "--block-channels", "16,32,64", "--block-layers", "1,1,1", "--stem-channels",
    "16",          "--head-dim",       "16",       "--stem-stride",  "2",     "--partition-size",
    "2",           "--bn-momentum",    "0.1"};

// train_cifar with kRun + more, in `dir`; ranks 0: one plain process, else mpirun -np ranks.
Result train(const TempDir& dir, int ranks, std::vector<std::string> more, bool with_run_flags = true) {
  std::string cmd = "cd " + quote(dir.path.string()) + " && env -u MAXGRAD_DATA ";
  if (ranks > 0) {
    cmd += quote(env("MAXGRAD_MPIEXEC")) + " -n " + std::to_string(ranks);
    if (env("MAXGRAD_MPIEXEC_OPENMPI") == "1") {
      // 2 ranks may be more than the slots Open MPI counts; root (CI containers) must be allowed;
      // and no core binding, so that a busy core does not hold one rank back.
      cmd += " --oversubscribe --bind-to none";
      if (geteuid() == 0) cmd += " --allow-run-as-root";
    }
    cmd += " ";
  }
  cmd += quote((fs::path(env("MAXGRAD_BIN")) / "train_cifar").string());
  std::vector<std::string> args = with_run_flags ? kRun : std::vector<std::string>{};
  args.insert(args.end(), more.begin(), more.end());
  for (const auto& a : args) cmd += " " + quote(a);
  const std::string out = dir / ".stdout", err = dir / ".stderr";
  const int raw = std::system((cmd + " >" + quote(out) + " 2>" + quote(err) + " </dev/null").c_str());
  Result r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_text(out), r.err = read_text(err);
  return r;
}

void require_ok(const Result& r) { REQUIRE_MESSAGE(r.status == 0, "exit ", r.status, "\n", r.out, "\n", r.err); }

std::map<std::string, mg::Tensor> load(const std::string& path) {
  std::map<std::string, mg::Tensor> m;
  for (auto& [n, t] : mg::serialize::load_tensors(path)) m[n] = t;
  return m;
}

// max |a - b| and max |b|.
std::pair<double, double> abs_error(const mg::Tensor& a, const mg::Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i)
    diff = std::max(diff, std::fabs(va[i] - vb[i])), scale = std::max(scale, std::fabs(vb[i]));
  return {diff, scale};
}

bool ends_with(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}
auto running_mean = [](const std::string& n) { return ends_with(n, ".running_mean"); };
auto running_var = [](const std::string& n) { return ends_with(n, ".running_var"); };

std::string g9(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}

// The largest difference between a and b over the entries whose name starts with `prefix` and
// passes `keep`, with its name, relative to the largest |value| among all those entries of b.
// (Relative to each tensor's own scale would not do for gradients: some are zero in exact
// arithmetic and rounding noise in float, e.g. the bias of a BatchNorm that a 1x1 convolution and
// another BatchNorm follow, which cancels it; their own-scale difference is noise over noise.)
// Every chosen entry of b must be in a.
template <typename Keep> std::pair<double, std::string> worst(const std::map<std::string, mg::Tensor>& a,
                                                              const std::map<std::string, mg::Tensor>& b,
                                                              const std::string& prefix, Keep keep,
                                                              int* count = nullptr) {
  std::pair<double, std::string> w{0.0, ""};
  double scale = 0;
  int n = 0;
  for (const auto& [name, t] : b) {
    if (name.rfind(prefix, 0) != 0 || !keep(name)) continue;
    auto it = a.find(name);
    REQUIRE_MESSAGE(it != a.end(), name, " is missing");
    const auto [diff, s] = abs_error(it->second, t);
    scale = std::max(scale, s);
    if (diff >= w.first) w = {diff, name};
    ++n;
  }
  if (count) *count = n;
  if (scale > 0) w.first /= scale;
  return w;
}
auto any = [](const std::string&) { return true; };

int count_prefix(const std::map<std::string, mg::Tensor>& m, const std::string& prefix) {
  int n = 0;
  for (const auto& [name, t] : m) n += name.rfind(prefix, 0) == 0;
  return n;
}

struct LogRow {
  // epoch,step,lr,train_loss,train_acc,test_loss,test_acc,seconds,test_loss_precise_bn,test_acc_precise_bn
  std::vector<double> v;
};
std::vector<LogRow> read_log(const std::string& path) {
  std::ifstream f(path);
  std::vector<LogRow> rows;
  std::string line;
  std::getline(f, line);
  while (std::getline(f, line)) {
    LogRow r;
    std::stringstream ss(line);
    // The first 10 columns (the held-out split's and others after them are empty here).
    for (std::string x; r.v.size() < 10 && std::getline(ss, x, ',');) r.v.push_back(std::stod(x));
    rows.push_back(r);
  }
  return rows;
}

// The same epoch logged twice: equal counts and accuracies, losses to float rounding; the
// evaluation with precise BatchNorm statistics too (on 2 ranks they pool both ranks' images).
void check_same_log(const std::string& a_path, const std::string& b_path) {
  const auto a = read_log(a_path), b = read_log(b_path);
  REQUIRE(a.size() == 1);
  REQUIRE(b.size() == 1);
  REQUIRE(a[0].v.size() == 10);
  REQUIRE(b[0].v.size() == 10);
  for (size_t c : {0, 1, 2, 3, 4, 5, 6, 8, 9})
    CHECK_MESSAGE(std::fabs(a[0].v[c] - b[0].v[c]) <= 1e-5 * (1 + std::fabs(a[0].v[c])), "column ", c, ": ", a[0].v[c],
                  " vs ", b[0].v[c]);
}

// Float rounding: the 2-rank sums are taken in another order than the 1-process ones. Measured on
// the machine of docs/distributed.md: loss 5e-8, gradients 6e-7, running statistics 0 (equal bits);
// the bounds leave a margin. Without --sync-bn the differences are over 100 times the bounds.
constexpr double kLossTol = 1e-6, kGradTol = 1e-5, kStatTol = 1e-6;

}  // namespace

TEST_CASE("one step of 2 ranks x 64 images with --sync-bn equals one step of 1 process x 128 images") {
  TempDir dir;
  require_ok(train(dir, 0, {"--max-steps", "1", "--out", "one", "--dump-step", "one.safetensors"}));
  const Result r = train(dir, 2, {"--max-steps", "1", "--out", "two", "--sync-bn", "--dump-step", "two.safetensors"});
  require_ok(r);
  CHECK(r.out.find("2 ranks (mpi)") != std::string::npos);
  CHECK(r.out.find("gradient allreduce") != std::string::npos);
  const auto one = load(dir / "one.safetensors"), two = load(dir / "two.safetensors");

  const double loss1 = one.at("loss").item(), loss2 = two.at("loss").item();
  int grads = 0, means = 0, vars = 0;
  const auto g = worst(two, one, "grad.", any, &grads);
  const auto m = worst(two, one, "state.", running_mean, &means);
  const auto v = worst(two, one, "state.", running_var, &vars);
  MESSAGE("loss ", g9(loss1), " vs ", g9(loss2),
          "; largest differences, relative to the largest value of their kind: ", "gradient ", g.first, " (", g.second,
          "), running_mean ", m.first, " (", m.second, "), running_var ", v.first, " (", v.second, ")");
  CHECK(std::fabs(loss1 - loss2) <= kLossTol * std::fabs(loss1));
  CHECK(grads == count_prefix(two, "grad."));  // the same parameters have gradients
  CHECK(grads > 50);
  CHECK(means == 10);  // every BatchNorm: the stem's, and 3 in each of the 3 MBConvs
  CHECK(vars == means);
  CHECK(g.first <= kGradTol);
  CHECK(m.first <= kStatTol);
  CHECK(v.first <= kStatTol);
  // num_batches_tracked is exact: one per training forward, as always.
  for (const auto& [name, t] : two)
    if (name.find("num_batches_tracked") != std::string::npos) CHECK(t.item() == 1);
}

TEST_CASE("without --sync-bn each rank normalises its own share, and rank 0's running statistics are kept") {
  TempDir dir;
  require_ok(train(dir, 0, {"--max-steps", "1", "--out", "one", "--dump-step", "one.safetensors"}));
  require_ok(train(dir, 0, {"--max-steps", "1", "--out", "half", "--batch", "64", "--dump-step", "half.safetensors"}));
  require_ok(train(dir, 2, {"--max-steps", "1", "--out", "two", "--dump-step", "two.safetensors"}));
  const auto one = load(dir / "one.safetensors"), half = load(dir / "half.safetensors"),
             two = load(dir / "two.safetensors");

  // The 128-image step is not what 2 ranks without --sync-bn compute: their BatchNorms normalised
  // each half with its own statistics.
  const double loss1 = one.at("loss").item(), loss2 = two.at("loss").item();
  const auto g = worst(two, one, "grad.", any);
  const auto m = worst(two, one, "state.", running_mean);
  const auto v = worst(two, one, "state.", running_var);
  MESSAGE("1 x 128 vs 2 x 64 without --sync-bn: loss ", g9(loss1), " vs ", g9(loss2), "; gradients differ by up to ",
          g.first, " (", g.second, "), running_mean by up to ", m.first, " (", m.second, "), running_var by up to ",
          v.first, " (", v.second, ")");
  CHECK(std::fabs(loss1 - loss2) > 100 * kLossTol * std::fabs(loss1));
  CHECK(g.first > 100 * kGradTol);
  CHECK(m.first > 100 * kStatTol);
  CHECK(v.first > 100 * kStatTol);

  // The running statistics are rank 0's: those of one process on rank 0's 64 images (the first half
  // of the global batch: --batch 64 takes the same first 64 images of the same permutation).
  int means = 0;
  const auto m0 = worst(two, half, "state.", running_mean, &means);
  const auto v0 = worst(two, half, "state.", running_var);
  MESSAGE("2 x 64 without --sync-bn vs 1 x 64 (rank 0's images): running_mean differs by up to ", m0.first,
          ", running_var by up to ", v0.first);
  CHECK(means == 10);
  CHECK(m0.first <= kStatTol);
  CHECK(v0.first <= kStatTol);
}

TEST_CASE("a whole epoch on 2 ranks logs what 1 process logs, resumed across rank counts too") {
  TempDir dir;
  // 2 steps and the evaluation (50 test images, split 25 + 25 over the ranks and summed).
  require_ok(train(dir, 0, {"--out", "one"}));
  require_ok(train(dir, 2, {"--out", "two", "--sync-bn"}));
  check_same_log(dir / "one/log.csv", dir / "two/log.csv");
  // 1 process for the first step, then 2 ranks; and 2 ranks then 1 process. A resumed run needs
  // no flags but the launch options.
  require_ok(train(dir, 0, {"--out", "up", "--max-steps", "1"}));
  Result r = train(dir, 2, {"--out", "up", "--resume", "--sync-bn"}, false);
  require_ok(r);
  CHECK(r.out.find("was trained with 1 rank(s); this run goes on with 2 rank(s) and --sync-bn") != std::string::npos);
  check_same_log(dir / "one/log.csv", dir / "up/log.csv");
  require_ok(train(dir, 2, {"--out", "down", "--max-steps", "1", "--sync-bn"}));
  require_ok(train(dir, 0, {"--out", "down", "--resume"}, false));
  check_same_log(dir / "one/log.csv", dir / "down/log.csv");

  // The weights are not compared here: AdamW divides each gradient by its own running RMS, so a
  // gradient that is zero in exact arithmetic (see worst()) and rounding noise in float becomes a
  // step of the full learning rate whose sign is the rounding's, in 1 process as on 2 ranks. Such
  // weights (those BatchNorm biases) do not change what the network computes in training, and the
  // logged losses and accuracies above agree.
}

TEST_CASE("a 2-rank run stopped and resumed on 2 ranks ends bitwise where an uninterrupted one does") {
  TempDir dir;
  // Drop-path on: each rank draws from its own stream, split from rank 0's generator every step.
  const std::vector<std::string> more = {"--stochastic-depth", "0.1", "--epochs", "2", "--sync-bn"};
  auto with = [&](std::vector<std::string> v) {
    v.insert(v.begin(), more.begin(), more.end());
    return v;
  };
  require_ok(train(dir, 2, with({"--out", "straight"})));
  require_ok(train(dir, 2, with({"--out", "resumed", "--max-steps", "3"})));
  require_ok(train(dir, 2, {"--out", "resumed", "--resume", "--sync-bn"}, false));
  const NamedTensors a = mg::serialize::load_tensors(dir / "straight/last.safetensors");
  const NamedTensors b = mg::serialize::load_tensors(dir / "resumed/last.safetensors");
  REQUIRE(a.size() == b.size());
  int compared = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].first == b[i].first);
    if (a[i].first.find("seconds") != std::string::npos) continue;
    CHECK_MESSAGE(mg::serialize::entry_from_tensor("", a[i].second).bytes ==
                      mg::serialize::entry_from_tensor("", b[i].second).bytes,
                  a[i].first);
    ++compared;
  }
  CHECK(compared > 50);
}

int main(int argc, char** argv) {
  std::string skip;
  if (!mg::dist::mpi_available())
    skip = "this build has no MPI (install libopenmpi-dev openmpi-bin and reconfigure; docs/distributed.md)";
  else if (env("MAXGRAD_MPIEXEC").empty() || !fs::exists(env("MAXGRAD_MPIEXEC")))
    skip = "no mpirun/mpiexec was found (install openmpi-bin and reconfigure)";
  else if (env("MAXGRAD_BIN").empty())
    skip = "MAXGRAD_BIN is not set; run through ctest";
  if (!skip.empty()) {
    std::printf("skipped: %s\n", skip.c_str());
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
