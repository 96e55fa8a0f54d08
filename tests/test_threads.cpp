// Determinism: the same seed gives bitwise-identical numbers with 1 thread and with 2. Every
// parallel kernel cuts its work into chunks fixed by the sizes alone (core/runtime/parallel.h), and sums
// that cross chunks are added in a fixed order, so the thread count cannot change a single bit.
// The sizes below are chosen so that each parallel path really splits its work.
#include <doctest/doctest.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/kernels/gemm.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/core/runtime/parallel.h"
#include "helpers.h"

using namespace mg;
using mg::testing::bitwise_equal;

namespace {

// Restores the default (all cores) whatever a test does.
struct ThreadsGuard {
  ~ThreadsGuard() { set_num_threads(0); }
};

struct Run {
  std::vector<std::pair<std::string, Tensor>> tensors;  // outputs and gradients, by name
};

// A small CNN classifier step: conv (im2col) -> batch_norm -> gelu -> depthwise conv -> 1x1 conv
// -> avg_pool -> linear -> layer_norm -> gelu -> dropout -> linear -> softmax + cross_entropy.
// 32 samples: conv's samples and weight-gradient groups of 8 split; 32x1024 @ 1024x64 is above
// gemm_parallel's split threshold; gelu on 131072 elements spans 8 elementwise chunks.
Run train_step(int threads, DType dt) {
  set_num_threads(threads);
  REQUIRE(get_num_threads() == threads);
  Generator gen(2024);
  auto param = [&](const Shape& s, double scale) { return mul(randn(s, gen, dt), scale).detach().requires_grad_(); };
  Tensor x = randn({32, 3, 16, 16}, gen, dt).requires_grad_();
  std::vector<int64_t> labels(32);
  for (int64_t i = 0; i < 32; ++i) labels[i] = (i * 7) % 10;
  Tensor target = Tensor::from_vector_i64(labels, {32});
  Tensor w1 = param({16, 3, 3, 3}, 0.3), b1 = param({16}, 0.1);
  Tensor bn_w = add(param({16}, 0.1), 1.0).detach().requires_grad_(), bn_b = param({16}, 0.1);
  Tensor rm = zeros({16}, dt), rv = ones({16}, dt);
  Tensor wd = param({16, 1, 3, 3}, 0.3), wp = param({16, 16, 1, 1}, 0.25);
  Tensor fc1 = param({64, 1024}, 0.03), fb1 = param({64}, 0.1);
  Tensor ln_w = add(param({64}, 0.1), 1.0).detach().requires_grad_(), ln_b = param({64}, 0.1);
  Tensor fc2 = param({10, 64}, 0.1), fb2 = param({10}, 0.1);

  Tensor h = conv2d(x, w1, b1, 1, 1);
  h = gelu(batch_norm(h, rm, rv, bn_w, bn_b, true, 0.1, 1e-5));
  h = conv2d(h, wd, Tensor(), 1, 1, 16);  // depthwise
  h = conv2d(h, wp);                      // 1x1
  h = avg_pool2d(h, 2, 2).flatten(1);     // (32, 1024)
  h = gelu(layer_norm(linear(h, fc1, fb1), ln_w, ln_b));
  Generator drop(7);
  h = dropout(h, 0.1, true, drop);
  Tensor logits = linear(h, fc2, fb2);
  Tensor probs = softmax(logits, 1);
  Tensor loss = add(cross_entropy(logits, target, 0.1), mean(mul(probs, probs)));
  loss.backward();

  Run r;
  r.tensors = {{"loss", loss},
               {"logits", logits},
               {"probs", probs},
               {"running_mean", rm},
               {"running_var", rv},
               {"x.grad", x.grad()},
               {"w1.grad", w1.grad()},
               {"b1.grad", b1.grad()},
               {"bn_w.grad", bn_w.grad()},
               {"bn_b.grad", bn_b.grad()},
               {"wd.grad", wd.grad()},
               {"wp.grad", wp.grad()},
               {"fc1.grad", fc1.grad()},
               {"fb1.grad", fb1.grad()},
               {"ln_w.grad", ln_w.grad()},
               {"ln_b.grad", ln_b.grad()},
               {"fc2.grad", fc2.grad()},
               {"fb2.grad", fb2.grad()}};
  return r;
}

}  // namespace

TEST_CASE("a training step is bitwise identical with 1 and 2 threads") {
  ThreadsGuard restore;
  for (DType dt : {DType::Float32, DType::Float64}) {
    INFO(std::string(dtype_name(dt)));
    Run one = train_step(1, dt), two = train_step(2, dt), again = train_step(1, dt);
    REQUIRE(one.tensors.size() == two.tensors.size());
    for (size_t i = 0; i < one.tensors.size(); ++i) {
      INFO(one.tensors[i].first);
      REQUIRE(one.tensors[i].second.defined());
      CHECK(bitwise_equal(one.tensors[i].second, two.tensors[i].second));
      CHECK(bitwise_equal(one.tensors[i].second, again.tensors[i].second));
    }
  }
}

TEST_CASE("parallel_for hands out the same chunks whatever the thread count") {
  ThreadsGuard restore;
  auto chunks = [](int threads) {
    set_num_threads(threads);
    std::mutex m;
    std::vector<std::pair<int64_t, int64_t>> seen;
    parallel_for(1000, 64, [&](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(m);
      seen.emplace_back(b, e);
    });
    std::sort(seen.begin(), seen.end());
    return seen;
  };
  auto one = chunks(1), two = chunks(2);
  CHECK(one == two);
  REQUIRE(one.size() == 16);
  CHECK(one.front() == std::make_pair<int64_t, int64_t>(0, 64));
  CHECK(one.back() == std::make_pair<int64_t, int64_t>(960, 1000));
}

TEST_CASE("gemm_parallel and batched matmul are bitwise identical with 1 and 2 threads") {
  ThreadsGuard restore;
  Generator g(9);
  Tensor a = randn({300, 96}, g), b = randn({96, 80}, g);         // rows of C split
  Tensor c = randn({40, 128}, g), d = randn({128, 400}, g);       // columns of C split
  Tensor q = randn({64, 16, 32}, g), k = randn({64, 32, 16}, g);  // many small products
  Tensor e = randn({3000, 24}, g), f = randn({3000, 20}, g);      // small C, long k: k split
  auto run = [&](int threads) {
    set_num_threads(threads);
    return std::vector<Tensor>{matmul(a, b), matmul(c, d), matmul(q, k), matmul(b.transpose(0, 1), a.transpose(0, 1)),
                               matmul(e.transpose(0, 1), f)};
  };
  auto one = run(1), two = run(2);
  for (size_t i = 0; i < one.size(); ++i) {
    INFO("product ", i);
    CHECK(bitwise_equal(one[i], two[i]));
  }
}
