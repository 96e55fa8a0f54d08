// SyncBatchNorm (nn/dist/sync_batchnorm.h): K ranks, each with its share of a batch, normalise exactly as
// one process with the whole batch does: outputs, running statistics, input gradients, and weight
// and bias gradients that add up over the ranks to the whole batch's. The ranks here are threads
// (tests/thread_group.h), so no MPI is needed; tests/distributed/test_mpi_train.cpp runs it over MPI.
#include <doctest/doctest.h>

#include <vector>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/kernel_path.h"
#include "helpers.h"
#include "maxgrad/models/maxvit.h"
#include "maxgrad/nn/batchnorm.h"
#include "maxgrad/nn/dist/sync_batchnorm.h"
#include "thread_group.h"

using namespace mg;
using mg::testing::check_close;

namespace {

struct BnResult {
  Tensor y, dx, dw, db, running_mean, running_var;
};

// One training forward of (sync_)batch_norm on x, then backward of sum(y * upstream).
BnResult bn_step(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const Tensor& upstream,
                 const std::shared_ptr<dist::ProcessGroup>& group) {
  const int64_t c = x_in.size(1);
  Tensor x = x_in.detach().clone().requires_grad_(true);
  Tensor w = w_in.detach().clone().requires_grad_(true), b = b_in.detach().clone().requires_grad_(true);
  BnResult r;
  r.running_mean = zeros({c}, x_in.dtype()), r.running_var = ones({c}, x_in.dtype());
  r.y = group ? dist::sync_batch_norm(x, r.running_mean, r.running_var, w, b, 0.1, 1e-5, group)
              : batch_norm(x, r.running_mean, r.running_var, w, b, true, 0.1, 1e-5);
  sum(r.y * upstream).backward();
  r.dx = x.grad(), r.dw = w.grad(), r.db = b.grad();
  return r;
}

}  // namespace

TEST_CASE("sync_batch_norm over 2 and 3 ranks with uneven shares equals batch_norm over the whole batch") {
  Generator gen(7);
  const Tensor x = randn({5, 3, 4, 4}, gen, DType::Float64) * 2.0 + 0.5;
  const Tensor w = randn({3}, gen, DType::Float64), b = randn({3}, gen, DType::Float64);
  const Tensor up = randn({5, 3, 4, 4}, gen, DType::Float64);
  const BnResult whole = bn_step(x, w, b, up, nullptr);

  // Shares of the 5 images: ranks may hold different numbers of them (even none).
  for (const std::vector<int64_t>& bounds : std::vector<std::vector<int64_t>>{{0, 2, 5}, {0, 1, 1, 5}}) {
    const int ranks = static_cast<int>(bounds.size()) - 1;
    CAPTURE(ranks);
    std::vector<BnResult> got(static_cast<size_t>(ranks));
    mg::testing::run_ranks(ranks, [&](std::shared_ptr<dist::ProcessGroup> g) {
      const int64_t lo = bounds[static_cast<size_t>(g->rank())], n = bounds[static_cast<size_t>(g->rank()) + 1] - lo;
      got[static_cast<size_t>(g->rank())] = bn_step(x.narrow(0, lo, n), w, b, up.narrow(0, lo, n), g);
    });
    Tensor dw = zeros({3}, DType::Float64), db = zeros({3}, DType::Float64);
    for (int r = 0; r < ranks; ++r) {
      const BnResult& g = got[static_cast<size_t>(r)];
      const int64_t lo = bounds[static_cast<size_t>(r)], n = bounds[static_cast<size_t>(r) + 1] - lo;
      check_close(g.y, whole.y.narrow(0, lo, n), 1e-12, 1e-12);
      check_close(g.dx, whole.dx.narrow(0, lo, n), 1e-12, 1e-12);
      check_close(g.running_mean, whole.running_mean, 1e-12, 1e-12);  // every rank: the global statistics
      check_close(g.running_var, whole.running_var, 1e-12, 1e-12);
      dw = dw + g.dw, db = db + g.db;
    }
    // dweight and dbias are each rank's own sums (DistributedDataParallel averages them); they add up.
    check_close(dw, whole.dw, 1e-12, 1e-12);
    check_close(db, whole.db, 1e-12, 1e-12);
  }
}

TEST_CASE("sync_batch_norm in a group of one is batch_norm, bit for bit") {
  // The fast kernels share their loops between the two; the reference path computes batch_norm
  // from its formula directly, equal in value but not in every bit.
  KernelPathGuard fast(KernelPath::fast);
  Generator gen(3);
  const Tensor x = randn({4, 5, 3, 3}, gen), w = randn({5}, gen), b = randn({5}, gen), up = randn({4, 5, 3, 3}, gen);
  const BnResult plain = bn_step(x, w, b, up, nullptr);
  const BnResult one = bn_step(x, w, b, up, std::make_shared<dist::SingleProcessGroup>());
  for (auto [a, e] : std::vector<std::pair<Tensor, Tensor>>{{one.y, plain.y},
                                                            {one.dx, plain.dx},
                                                            {one.dw, plain.dw},
                                                            {one.db, plain.db},
                                                            {one.running_mean, plain.running_mean},
                                                            {one.running_var, plain.running_var}})
    CHECK(mg::testing::bitwise_equal(a, e));
}

TEST_CASE("convert_sync_batchnorm: every BatchNorm2d of MaxViT, names unchanged, evaluation without collectives") {
  models::MaxVitConfig cfg = models::MaxVitConfig::preset("cifar");
  cfg.stem_channels = 16, cfg.block_channels = {16, 32}, cfg.block_layers = {1, 1}, cfg.head_dim = 16;
  cfg.partition_size = 2, cfg.stem_stride = 2, cfg.input_h = cfg.input_w = 16;
  models::MaxVit model(cfg, 0);
  std::vector<std::string> names_before;
  for (auto& [n, t] : model.state_dict()) names_before.push_back(n);
  auto group = std::make_shared<dist::SingleProcessGroup>();
  // stem: 1; per MBConv: pre_norm, conv_a, conv_b.
  CHECK(dist::convert_sync_batchnorm(model, group) == 1 + 3 * 2);
  std::vector<std::string> names_after;
  for (auto& [n, t] : model.state_dict()) names_after.push_back(n);
  CHECK(names_after == names_before);

  Generator gen(1);
  const Tensor x = randn({2, 3, 16, 16}, gen);
  model.train();
  const Tensor out = model(x);
  CHECK(group->stats().calls == 7);  // training: one allreduce per layer's forward
  sum(out).backward();
  CHECK(group->stats().calls == 2 * 7);  // and one per layer's backward
  model.eval();
  model(x);
  CHECK(group->stats().calls == 2 * 7);                    // evaluation: the running statistics, no collective
  CHECK(dist::convert_sync_batchnorm(model, nullptr) == 7);  // back to local statistics
  model.train();
  model(x);
  CHECK(group->stats().calls == 2 * 7);
}

TEST_CASE("sync_batch_norm errors name the problem") {
  Generator gen(0);
  const Tensor x = randn({1, 2, 1, 1}, gen);
  CHECK(mg::testing::error_message([&] {
          dist::sync_batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, nullptr);
        }).find("needs a process group") != std::string::npos);
  // One value per channel over all ranks: no variance to normalise with.
  CHECK(mg::testing::error_message([&] {
          dist::sync_batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5,
                          std::make_shared<dist::SingleProcessGroup>());
        }).find("more than 1 value per channel over all ranks") != std::string::npos);
  // Two ranks of one image of 1x1 each: 2 values per channel, which is enough.
  mg::testing::run_ranks(2, [&](std::shared_ptr<dist::ProcessGroup> g) {
    Generator own(static_cast<uint64_t>(g->rank()));
    Tensor rm = zeros({2}), rv = ones({2});
    dist::sync_batch_norm(randn({1, 2, 1, 1}, own), rm, rv, Tensor(), Tensor(), 0.1, 1e-5, g);
  });
}
