// The op-level profiler (core/runtime/profiler.h): each op's forward and backward counted once, ops inside a
// backward formula, a Scope or a PartOfOp not counted as ops of their own, shapes when asked for, and
// nothing at all when it is off.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/core/runtime/profiler.h"

using namespace mg;

namespace {
const profiler::Entry* find(const std::vector<profiler::Entry>& es, profiler::Phase phase, const std::string& name) {
  for (const profiler::Entry& e : es)
    if (e.phase == phase && e.name == name) return &e;
  return nullptr;
}
Tensor leaf(const Shape& s, uint64_t seed) {
  Generator gen(seed);
  Tensor t = randn(s, gen, DType::Float32);
  t.requires_grad_();
  return t;
}
// Turns profiling off and forgets its entries however a test case ends.
struct Session {
  explicit Session(bool shapes = false) {
    profiler::reset();
    profiler::enable(true, shapes);
  }
  ~Session() {
    profiler::enable(false);
    profiler::reset();
  }
};
}  // namespace

TEST_CASE("profiler: off by default, and off records nothing") {
  CHECK_FALSE(profiler::enabled());
  profiler::reset();
  Tensor x = leaf({2, 3}, 1);
  sum(mul(x, x)).backward();
  CHECK(profiler::entries().empty());
}

TEST_CASE("profiler: one forward and one backward entry per op, the formulas' own ops not counted") {
  Tensor x = leaf({4, 5}, 2), w = leaf({4, 5}, 3);
  Session s;
  // mul's backward calls mul twice and sum's calls expand: none of them is a forward op here
  sum(mul(x, w)).backward();
  const auto es = profiler::entries();
  using profiler::Phase;
  REQUIRE(find(es, Phase::Forward, "mul"));
  REQUIRE(find(es, Phase::Forward, "sum"));
  REQUIRE(find(es, Phase::Backward, "mul"));
  REQUIRE(find(es, Phase::Backward, "sum"));
  CHECK(find(es, Phase::Forward, "mul")->calls == 1);
  CHECK(find(es, Phase::Forward, "sum")->calls == 1);
  CHECK(find(es, Phase::Backward, "mul")->calls == 1);
  CHECK(find(es, Phase::Backward, "sum")->calls == 1);
  CHECK_MESSAGE(es.size() == 4, profiler::report());
  for (const auto& e : es) CHECK(e.ms >= 0);
  for (size_t i = 1; i < es.size(); ++i) CHECK(es[i - 1].ms >= es[i].ms);  // largest first
}

TEST_CASE("profiler: scopes are entries of their own and contain their ops") {
  Session s;
  Tensor x = leaf({3}, 4);
  {
    profiler::Scope scope("sleep and add");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    add(x, x);
  }
  const auto es = profiler::entries();
  REQUIRE(es.size() == 1);
  CHECK(es[0].phase == profiler::Phase::Scope);
  CHECK(es[0].name == "sleep and add");
  CHECK(es[0].calls == 1);
  CHECK(es[0].ms >= 5.0);  // a lower bound only: the sleep is in it
  // the next op is timed from the scope's end, not from before the sleep
  add(x, x);
  const auto after = profiler::entries();  // find() points into it: keep it alive
  const auto* a = find(after, profiler::Phase::Forward, "add");
  REQUIRE(a);
  CHECK(a->ms < es[0].ms);
}

TEST_CASE("profiler: batch_norm's running-statistics update is part of batch_norm") {
  Session s;
  Tensor x = leaf({4, 3, 2, 2}, 5);
  Tensor rm = zeros({3}), rv = ones({3});
  Tensor w = ones({3}), b = zeros({3});
  batch_norm(x, rm, rv, w, b, /*training=*/true, 0.1, 1e-5);
  const auto es = profiler::entries();
  REQUIRE(es.size() == 1);
  CHECK(es[0].name == "batch_norm");
  CHECK(es[0].calls == 1);
}

TEST_CASE("profiler: record_shapes keys entries by the inputs' shapes, alike in both phases") {
  Session s(/*shapes=*/true);
  Tensor a = leaf({2, 3}, 6), b = leaf({2, 3}, 7), c = leaf({5}, 8);
  Tensor l = add(sum(mul(a, b)), sum(mul(c, c)));
  l.backward();
  const auto es = profiler::entries();
  using profiler::Phase;
  for (Phase p : {Phase::Forward, Phase::Backward}) {
    REQUIRE(find(es, p, "mul [2,3] [2,3]"));
    REQUIRE(find(es, p, "mul [5] [5]"));
    CHECK(find(es, p, "mul [2,3] [2,3]")->calls == 1);
    CHECK(find(es, p, "sum [2,3]"));
    CHECK(find(es, p, "add"));  // its inputs are 0-dim: left out of the key
  }
}

TEST_CASE("profiler: report divides by the number of steps") {
  Session s;
  Tensor x = leaf({3}, 9);
  for (int step = 0; step < 2; ++step) sum(mul(x, x)).backward();
  const std::string r = profiler::report(2);
  CHECK(r.find("phase") == 0);
  CHECK(r.find("total") != std::string::npos);
  // every line is per step: each op ran once a step
  size_t lines = 0;
  for (size_t at = r.find("forward"); at != std::string::npos; at = r.find("forward", at + 1)) {
    const std::string line = r.substr(at, r.find('\n', at) - at);
    CHECK_MESSAGE(line.find(" 1.0 ") != std::string::npos, line);
    ++lines;
  }
  CHECK(lines == 2);
}
