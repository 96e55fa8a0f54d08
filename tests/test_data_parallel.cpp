// Data-parallel training (nn/dist/data_parallel.h, data/loader.h's shards): the ranks start from rank
// 0's weights, gradients are averaged over ranks in buckets, rank 0's buffers and generator are
// shared out, each rank loads its share of every global batch, and so K ranks with SyncBatchNorm
// take the step one process takes on the whole batch. The ranks are threads of this process
// (tests/thread_group.h); tests/distributed/test_mpi_train.cpp runs train_cifar over MPI.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "maxgrad/core/factory.h"
#include "maxgrad/data/loader.h"
#include "maxgrad/data/synthetic.h"
#include "helpers.h"
#include "maxgrad/models/maxvit.h"
#include "maxgrad/nn/dist/data_parallel.h"
#include "maxgrad/nn/dist/sync_batchnorm.h"
#include "thread_group.h"

using namespace mg;
using mg::testing::check_close;
using mg::testing::run_ranks;

namespace {

// Three parameters (10, 3 and 2 values) and a buffer, filled with `v`.
struct Toy : nn::Module {
  Tensor a, b, c, buf;
  explicit Toy(double v) {
    a = register_parameter("a", full({10}, v));
    b = register_parameter("b", full({3}, v));
    c = register_parameter("c", full({2}, v));
    buf = register_buffer("buf", full({4}, v));
  }
  Tensor forward(const Tensor& x) override { return x; }
};

}  // namespace

TEST_CASE("DistributedDataParallel starts every rank from rank 0's parameters and buffers") {
  run_ranks(3, [](std::shared_ptr<dist::ProcessGroup> g) {
    Toy toy(10.0 + g->rank());
    dist::DistributedDataParallel ddp(toy, g);
    for (const auto& [name, t] : toy.state_dict())
      for (double v : t.to_vector())
        if (v != 10.0) throw std::runtime_error("rank " + std::to_string(g->rank()) + ": " + name + " is not rank 0's");
    // sync_buffers: rank 0's buffers again, after every rank changed its own.
    toy.buf.fill_(20.0 + g->rank());
    ddp.sync_buffers();
    if (toy.buf.to_vector() != std::vector<double>(4, 20.0)) throw std::runtime_error("buffers are not rank 0's");
  });
}

TEST_CASE("average_gradients: the mean over ranks, bucket by bucket; unused parameters as DDP treats them") {
  std::vector<std::vector<std::vector<double>>> grads(3);  // [rank][parameter] -> values, empty = none
  std::vector<int64_t> buckets(3);
  run_ranks(3, [&](std::shared_ptr<dist::ProcessGroup> g) {
    const int r = g->rank();
    Toy toy(1.0);
    // A cap of 48 bytes: a (40 bytes) alone, then b and c (20 bytes) together.
    dist::DistributedDataParallel ddp(toy, g, dist::DataParallelOptions{48});
    buckets[static_cast<size_t>(r)] = ddp.num_buckets();
    toy.a.set_grad(full({10}, r + 1.0));         // every rank: 1, 2, 3
    if (r == 1) toy.b.set_grad(full({3}, 6.0));  // rank 1 only; the others contribute zeros
    ddp.average_gradients();                     // c: no rank has a gradient
    for (const Tensor& p : {toy.a, toy.b, toy.c})
      grads[static_cast<size_t>(r)].push_back(p.grad().defined() ? p.grad().to_vector() : std::vector<double>{});
  });
  for (int r = 0; r < 3; ++r) {
    CAPTURE(r);
    CHECK(buckets[static_cast<size_t>(r)] == 2);
    CHECK(grads[static_cast<size_t>(r)][0] == std::vector<double>(10, 2.0));
    CHECK(grads[static_cast<size_t>(r)][1] == std::vector<double>(3, 2.0));
    CHECK(grads[static_cast<size_t>(r)][2].empty());  // still none: the optimiser skips it
  }
}

TEST_CASE("DistributedDataParallel refuses ranks whose models differ, on every rank") {
  std::vector<std::string> errors(2);
  run_ranks(2, [&](std::shared_ptr<dist::ProcessGroup> g) {
    models::MaxVitConfig cfg = models::MaxVitConfig::preset("cifar");
    cfg.block_channels = {32, g->rank() == 0 ? 64 : 96}, cfg.block_layers = {1, 1};
    models::MaxVit model(cfg, 0);
    errors[static_cast<size_t>(g->rank())] =
        mg::testing::error_message([&] { dist::DistributedDataParallel(model, g); });
  });
  for (const std::string& e : errors)
    CHECK(e.find("the model of rank(s) 1 differs from rank 0's") != std::string::npos);
}

TEST_CASE("sync_generator: rank 0 keeps its stream, every other rank gets one of its own, split from it") {
  std::vector<std::vector<uint64_t>> draws(3);
  Generator reference(42);
  const uint64_t rank0_first = reference.next_u64();
  run_ranks(3, [&](std::shared_ptr<dist::ProcessGroup> g) {
    Generator gen(42 + 1000 * static_cast<uint64_t>(g->rank()));  // only rank 0's state matters
    dist::sync_generator(*g, gen);
    draws[static_cast<size_t>(g->rank())] = {gen.next_u64(), gen.next_u64()};
  });
  CHECK(draws[0][0] == rank0_first);
  CHECK(draws[1] != draws[0]);
  CHECK(draws[2] != draws[0]);
  CHECK(draws[1] != draws[2]);
}

TEST_CASE("DataLoader shards: each rank a contiguous share of every global batch, together the whole batch") {
  const data::ImageSet set = data::make_synthetic(25, 1);
  data::LoaderOptions o;
  o.batch_size = 10, o.shuffle = true, o.seed = 5, o.augment = true, o.num_prefetch = 0;
  data::DataLoader whole(set, o);
  whole.start_epoch(1);
  std::vector<data::Batch> expected;
  for (data::Batch b; whole.next(b);) expected.push_back(b);
  REQUIRE(expected.size() == 3);  // 10, 10, 5

  for (int64_t shards : {2, 3}) {
    std::vector<std::vector<data::Batch>> got(static_cast<size_t>(shards));
    for (int64_t s = 0; s < shards; ++s) {
      o.num_shards = shards, o.shard = s;
      data::DataLoader part(set, o);
      CHECK(part.batches_per_epoch() == 3);  // global batches, whatever the shard count
      part.start_epoch(1);
      for (data::Batch b; part.next(b);) got[static_cast<size_t>(s)].push_back(b);
    }
    for (size_t k = 0; k < expected.size(); ++k) {
      std::vector<int64_t> indices;
      std::vector<float> pixels;
      for (int64_t s = 0; s < shards; ++s) {
        const data::Batch& b = got[static_cast<size_t>(s)].at(k);
        CHECK(b.n >= expected[k].n / shards);  // balanced: shares differ by at most one image
        CHECK(b.n <= expected[k].n / shards + 1);
        indices.insert(indices.end(), b.indices.begin(), b.indices.end());
        pixels.insert(pixels.end(), b.x.begin(), b.x.end());
      }
      CHECK(indices == expected[k].indices);
      CHECK(pixels == expected[k].x);  // the same augmentation: it is keyed by the image, not the rank
    }
  }
  o.num_shards = 2, o.shard = 2;
  CHECK_THROWS_WITH_AS(data::DataLoader(set, o), "DataLoader: shard 2 of 2 shards; expected 0 <= shard < num_shards",
                       std::invalid_argument);
}

TEST_CASE("2 ranks x 4 images with SyncBatchNorm take the step of 1 process x 8 images (MaxViT, float64)") {
  models::MaxVitConfig cfg = models::MaxVitConfig::preset("cifar");
  cfg.stem_channels = 16, cfg.block_channels = {16, 32}, cfg.block_layers = {1, 1}, cfg.head_dim = 16;
  cfg.partition_size = 2, cfg.stem_stride = 2, cfg.input_h = cfg.input_w = 16, cfg.bn = nn::BatchNormOptions().eps(1e-3).momentum(0.1);
  Generator gen(11);
  const Tensor x = randn({8, 3, 16, 16}, gen, DType::Float64);
  const Tensor y = Tensor::from_vector_i64({0, 1, 2, 3, 4, 5, 6, 7}, {8});

  auto step = [&](models::MaxVit& model, const Tensor& xs, const Tensor& ys) {
    model.train();
    cross_entropy(model(xs), ys, 0.1).backward();
  };
  std::vector<nn::NamedTensors> grads(2), states(2);
  run_ranks(2, [&](std::shared_ptr<dist::ProcessGroup> g) {
    // Rank 1 builds other weights: the broadcast gives it rank 0's (seed 100).
    models::MaxVit model(cfg, 100 + static_cast<uint64_t>(g->rank()));
    model.to(DType::Float64);
    dist::convert_sync_batchnorm(model, g);
    dist::DistributedDataParallel ddp(model, g);
    const int64_t lo = 4 * g->rank();
    step(model, x.narrow(0, lo, 4), y.narrow(0, lo, 4));
    ddp.average_gradients();
    for (auto& [n, p] : model.named_parameters()) grads[static_cast<size_t>(g->rank())].emplace_back(n, p.grad());
    states[static_cast<size_t>(g->rank())] = model.state_dict();
  });
  models::MaxVit whole(cfg, 100);
  whole.to(DType::Float64);
  step(whole, x, y);
  const auto params = whole.named_parameters();
  const auto state = whole.state_dict();
  for (int r = 0; r < 2; ++r) {
    REQUIRE(grads[static_cast<size_t>(r)].size() == params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      CAPTURE(params[i].first);
      check_close(grads[static_cast<size_t>(r)][i].second, params[i].second.grad(), 1e-9, 1e-12);
    }
    REQUIRE(states[static_cast<size_t>(r)].size() == state.size());
    for (size_t i = 0; i < state.size(); ++i) {  // the running statistics above all
      CAPTURE(state[i].first);
      check_close(states[static_cast<size_t>(r)][i].second, state[i].second, 1e-12, 1e-12);
    }
  }
  CHECK(params.size() > 40);
}
