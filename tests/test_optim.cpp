// Optimisers, schedule and clipping against PyTorch 1.13 (numbers from torch.optim.SGD / AdamW,
// LambdaLR with torch_cifar_ref.py's lambda and torch.nn.utils.clip_grad_norm_, pasted as literals
// so the test needs no Python), and the optimiser state's save / restore.
//
// The problem: two float64 parameters whose gradient is the fixed field g = a * p + b (the gradient
// of a quadratic loss), so both sides compute the same gradients without autograd:
//   pa0 = [[0.5, -1, 2], [0.25, -0.75, 1.5]]  a = [[1, 2, 0.5], [3, 0.1, 1]]  b = [[0.2, -0.1, 0], [0.05, 0.3, -0.4]]
//   pb0 = [0.1, -0.2, 0.3]                     a = [0.7, 1.3, 2]              b = [-0.5, 0.25, 0.125]
// The script that printed them (torch.set_default_dtype(torch.float64)):
//   for s in range(steps):
//     if lrs: opt.param_groups[0]['lr'] = lrs[s]
//     pa.grad = aa * pa.detach() + ba; pb.grad = ab * pb.detach() + bb; opt.step()
#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <type_traits>

#include "helpers.h"
#include "maxgrad/nn/optim/optim.h"
#include "maxgrad/nn/serialize/serialize.h"

using namespace mg;
using mg::testing::check_values;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s, DType::Float64); }

struct Problem {
  Tensor pa = f64({0.5, -1.0, 2.0, 0.25, -0.75, 1.5}, {2, 3});
  Tensor pb = f64({0.1, -0.2, 0.3}, {3});
  Tensor aa = f64({1.0, 2.0, 0.5, 3.0, 0.1, 1.0}, {2, 3}), ba = f64({0.2, -0.1, 0.0, 0.05, 0.3, -0.4}, {2, 3});
  Tensor ab = f64({0.7, 1.3, 2.0}, {3}), bb = f64({-0.5, 0.25, 0.125}, {3});
  Problem() {
    pa.requires_grad_();
    pb.requires_grad_();
  }
  std::vector<Tensor> params() { return {pa, pb}; }
  void set_grads() {
    NoGradGuard no_grad;
    pa.set_grad(add(mul(pa.detach(), aa), ba));
    pb.set_grad(add(mul(pb.detach(), ab), bb));
  }
  void run(optim::Optimizer& opt, int steps, const std::vector<double>& lrs = {}) {
    for (int s = 0; s < steps; ++s) {
      if (!lrs.empty()) opt.lr = lrs[static_cast<size_t>(s)];
      set_grads();
      opt.step();
    }
  }
};

// The same arithmetic in float64 on both sides: only rounding order differs.
constexpr double kTol = 1e-13;

void check_sgd(double lr, double momentum, double wd, bool nesterov, double dampening, const std::vector<double>& a,
               const std::vector<double>& b) {
  Problem p;
  optim::SGD opt(p.params(),
                 optim::SGDOptions(lr).momentum(momentum).weight_decay(wd).nesterov(nesterov).dampening(dampening));
  p.run(opt, 3);
  check_values(p.pa, a, kTol, kTol);
  check_values(p.pb, b, kTol, kTol);
}

}  // namespace

// torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov) ported argument by
// argument must not compile: past lr, the hyper-parameters are named (SGDOptions).
static_assert(std::is_constructible_v<optim::SGD, std::vector<Tensor>, double>);
static_assert(!std::is_constructible_v<optim::SGD, std::vector<Tensor>, double, double>);
static_assert(!std::is_constructible_v<optim::SGD, std::vector<Tensor>, double, double, double, double, bool>);
static_assert(!std::is_constructible_v<optim::AdamW, std::vector<Tensor>, double, double, double, double, double>);

TEST_CASE("SGDOptions and AdamWOptions chain named setters with PyTorch's defaults") {
  const optim::SGDOptions s = optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4);
  CHECK(s.lr() == 0.1);
  CHECK(s.momentum() == 0.9);
  CHECK(s.dampening() == 0);
  CHECK(s.weight_decay() == 5e-4);
  CHECK_FALSE(s.nesterov());
  const optim::AdamWOptions a;
  CHECK(a.lr() == 1e-3);
  CHECK(a.betas() == std::pair<double, double>{0.9, 0.999});
  CHECK(a.eps() == 1e-8);
  CHECK(a.weight_decay() == 1e-2);
  Tensor p = Tensor::from_vector(std::vector<double>{1.0}, {1}, DType::Float64);
  p.requires_grad_();
  optim::SGD opt({p}, optim::SGDOptions(0.5).dampening(0.25).weight_decay(0.1));
  CHECK(opt.dampening == 0.25);
  CHECK(opt.weight_decay == 0.1);
}

TEST_CASE("SGD matches torch.optim.SGD over three steps") {
  SUBCASE("plain") {
    check_sgd(0.1, 0, 0, false, 0, {0.3103, -0.48759999999999987, 1.71475, 0.07479999999999998, -0.81682725, 1.2019},
              {0.2201807, -0.1973731, 0.12309999999999999});
  }
  SUBCASE("momentum 0.9, weight decay 0.01") {
    check_sgd(
        0.1, 0.9, 0.01, false, 0,
        {0.1379542295, -0.011338188999999986, 1.452484298, -0.09152803025000003, -0.8708717317500001, 0.9274027885},
        {0.3262649389, -0.1940019668, -0.04111175280000001});
  }
  SUBCASE("nesterov, weight decay 0.05") {
    check_sgd(0.05, 0.9, 0.05, true, 0,
              {0.2340071019453125, -0.2802345703593749, 1.57805555846875, 0.002693499863281244, -0.8244850858007813,
               1.0689080617734374},
              {0.26016327871093753, -0.19285853868125, 0.052266782356249986});
  }
  SUBCASE("momentum 0.8, dampening 0.3") {
    check_sgd(
        0.1, 0.8, 0, false, 0.3,
        {0.21272699999999997, -0.19830399999999992, 1.5749274999999998, -0.03328800000000003, -0.8483238525, 1.048571},
        {0.28024314300000003, -0.195983019, 0.023223999999999988});
  }
}

TEST_CASE("AdamW matches torch.optim.AdamW") {
  SUBCASE("lr 0.01, default betas, weight decay 0.05, three steps") {
    Problem p;
    optim::AdamW opt(p.params(), optim::AdamWOptions(0.01).betas({0.9, 0.999}).eps(1e-8).weight_decay(0.05));
    p.run(opt, 3);
    check_values(p.pa,
                 {0.4692805371908571, -0.9685258434571513, 1.9670219135390294, 0.2196846873963287, -0.7788563798061001,
                  1.4677759767384713},
                 kTol, kTol);
    check_values(p.pb, {0.12981815987755743, -0.18713551655682398, 0.2695963746101199}, kTol, kTol);
    CHECK(opt.step_count() == 3);
  }
  SUBCASE("betas (0.8, 0.95), eps 1e-6, weight decay 0.1") {
    Problem p;
    optim::AdamW opt(p.params(), optim::AdamWOptions(0.02).betas({0.8, 0.95}).eps(1e-6).weight_decay(0.1));
    p.run(opt, 3);
    check_values(p.pa,
                 {0.4372307064948598, -0.9342026426439588, 1.9281831187468856, 0.1889414012739879, -0.8053623598326124,
                  1.4312085083729096},
                 kTol, kTol);
    check_values(p.pb, {0.15916771025551602, -0.19585906084258456, 0.23854250769367366}, kTol, kTol);
  }
  SUBCASE("the learning rate changed before every step, as the schedule does") {
    Problem p;
    optim::AdamW opt(p.params(), optim::AdamWOptions(0.002).betas({0.9, 0.999}).eps(1e-8).weight_decay(0.05));
    p.run(opt, 4, {0.001, 0.002, 0.0015, 0.0005});
    check_values(p.pa,
                 {0.49487590864240283, -0.9947507724056281, 1.9945006527940081, 0.2449391597229711, -0.7548119454390874,
                  1.4946257761918413},
                 kTol, kTol);
    check_values(p.pb, {0.10497405491217383, -0.19505560419507306, 0.2949263339281177}, kTol, kTol);
  }
  SUBCASE("float32 parameters follow the float64 numbers to float precision") {
    Problem p;
    Tensor pa = p.pa.detach().to(DType::Float32), pb = p.pb.detach().to(DType::Float32);
    pa.requires_grad_(), pb.requires_grad_();
    optim::AdamW opt({pa, pb}, optim::AdamWOptions(0.01).betas({0.9, 0.999}).eps(1e-8).weight_decay(0.05));
    for (int s = 0; s < 3; ++s) {
      NoGradGuard no_grad;
      pa.set_grad(add(mul(pa.detach(), p.aa.to(DType::Float32)), p.ba.to(DType::Float32)));
      pb.set_grad(add(mul(pb.detach(), p.ab.to(DType::Float32)), p.bb.to(DType::Float32)));
      opt.step();
    }
    check_values(pb, {0.12981815987755743, -0.18713551655682398, 0.2695963746101199}, 1e-5, 1e-6);
  }
}

TEST_CASE("decay_mask follows timm's param_groups_weight_decay") {
  auto p = [](const Shape& s) { return zeros(s, DType::Float32); };
  const nn::NamedTensors named = {
      {"stem.0.weight", p({8, 3, 3, 3})},                          // conv kernel: decays
      {"stem.0.bias", p({8})},                                     // 1-D
      {"stem.1.weight", p({8})},                                   // a norm's weight: 1-D
      {"blocks.0.attn.relative_position_bias_table", p({49, 2})},  // 2-D, excluded by name
      {"blocks.0.mlp.0.weight", p({16, 8})},                       // decays
      {"odd.bias", p({2, 2})},                                     // 2-D, but named a bias
      {"scale", p({})},                                            // 0-D
  };
  CHECK(optim::decay_mask(named) == std::vector<bool>{true, false, false, false, true, false, false});
  CHECK(optim::decay_mask(named, {}) == std::vector<bool>{true, false, false, true, true, false, false});
  CHECK(optim::decay_mask(named, {"mlp.0.weight"}) == std::vector<bool>{true, false, false, true, false, false, false});
}

TEST_CASE("a decay mask gives torch's no-decay parameter group (weight_decay 0) exactly") {
  // torch.optim.AdamW / SGD with two parameter groups, the second with weight_decay 0.0
  // (printed by tests/golden/recipe/make_recipe.py)
  SUBCASE("AdamW lr 0.01, weight decay 0.05 on pa only") {
    Problem p;
    optim::AdamW opt(p.params(), optim::AdamWOptions(0.01).weight_decay(0.05), {true, false});
    p.run(opt, 3);
    check_values(p.pa,
                 {0.4692805371908571, -0.9685258434571513, 1.9670219135390294, 0.2196846873963287, -0.7788563798061001,
                  1.4677759767384713},
                 kTol, kTol);
    check_values(p.pb, {0.12998298412581147, -0.18721838596216459, 0.27003063514965825}, kTol, kTol);
  }
  SUBCASE("AdamW betas (0.8, 0.95), eps 1e-6, weight decay 0.1 on pb only") {
    Problem p;
    optim::AdamW opt(p.params(), optim::AdamWOptions(0.02).betas({0.8, 0.95}).eps(1e-6).weight_decay(0.1),
                     {false, true});
    p.run(opt, 3);
    check_values(p.pa,
                 {0.44009941065754293, -0.9400639308044728, 1.9400324859489333, 0.190309074287632, -0.8099710302612981,
                  1.440060854588756},
                 kTol, kTol);
    check_values(p.pb, {0.15916771025551602, -0.19585906084258456, 0.23854250769367366}, kTol, kTol);
  }
  SUBCASE("SGD momentum 0.9, weight decay 0.01 on pa only") {
    Problem p;
    optim::SGD opt(p.params(), optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.01), {true, false});
    p.run(opt, 3);
    check_values(
        p.pa,
        {0.1379542295, -0.011338188999999986, 1.452484298, -0.09152803025000003, -0.8708717317500001, 0.9274027885},
        kTol, kTol);
    check_values(p.pb, {0.3269927, -0.1949971, -0.040025000000000026}, kTol, kTol);
  }
  SUBCASE("bit for bit: the masked parameter as with weight decay 0, the other as without a mask") {
    Problem masked, no_decay, decayed;
    optim::AdamW a(masked.params(), optim::AdamWOptions(0.01).weight_decay(0.05), {true, false});
    optim::AdamW b(no_decay.params(), optim::AdamWOptions(0.01).weight_decay(0.0));
    optim::AdamW c(decayed.params(), optim::AdamWOptions(0.01).weight_decay(0.05));
    masked.run(a, 3), no_decay.run(b, 3), decayed.run(c, 3);
    CHECK(mg::testing::bitwise_equal(masked.pb, no_decay.pb));
    CHECK(mg::testing::bitwise_equal(masked.pa, decayed.pa));
    CHECK(a.decays(0));
    CHECK_FALSE(a.decays(1));
  }
  Problem p;
  CHECK_THROWS_MG(optim::AdamW(p.params(), optim::AdamWOptions(), {true}), "optimizer", "decay_mask has 1 entries",
                  "2 parameters");
}

TEST_CASE("a parameter without a gradient is left alone, as in PyTorch") {
  Problem p;
  optim::AdamW opt(p.params(), 0.01);
  p.set_grads();
  p.pb.zero_grad();
  const std::vector<double> before = p.pb.to_vector();
  opt.step();
  check_values(p.pb, before, 0, 0);  // not even weight decay
}

TEST_CASE("warmup_cosine_lr equals torch_cifar_ref.py's LambdaLR, step by step") {
  // LambdaLR(opt, lambda s: (s+1)/warm if s < warm else 0.5*(1+cos(pi*(s-warm)/max(1,total-warm)))),
  // the lr read before each opt.step(); sched.step().
  struct Case {
    double base;
    int64_t warm, total;
    std::vector<double> lr;
  };
  const std::vector<Case> cases = {
      {2e-3,
       5,
       15,
       {0.0004, 0.0008, 0.0012, 0.0016, 0.002, 0.002, 0.0019510565162951536, 0.0018090169943749475,
        0.0015877852522924731, 0.0013090169943749475, 0.001, 0.0006909830056250527, 0.00041221474770752696,
        0.00019098300562505265, 4.894348370484647e-05}},
      {0.1, 1, 4, {0.1, 0.1, 0.07500000000000001, 0.025000000000000012}},
      {1.0, 3, 3, {0.3333333333333333, 0.6666666666666666, 1.0}},  // warm-up only: total == warm
  };
  for (const Case& c : cases)
    for (int64_t s = 0; s < c.total; ++s) {
      CAPTURE(c.base);
      CAPTURE(c.warm);
      CAPTURE(s);
      CHECK(optim::warmup_cosine_lr(c.base, s, c.warm, c.total) ==
            doctest::Approx(c.lr[static_cast<size_t>(s)]).epsilon(1e-14));
    }
}

TEST_CASE("clip_grad_norm matches torch.nn.utils.clip_grad_norm_") {
  SUBCASE("clipping: every gradient scaled by max_norm / (norm + 1e-6)") {
    Problem p;
    p.set_grads();
    CHECK(optim::clip_grad_norm(p.params(), 1.0) == doctest::Approx(2.917404668536746).epsilon(1e-14));
    check_values(p.pa.grad(),
                 {0.2399392061067366, -0.7198176183202099, 0.3427702944381952, 0.27421623555055613, 0.0771233162485939,
                  0.37704732388201473},
                 kTol, kTol);
    check_values(p.pb.grad(), {-0.14739122660842394, -0.003427702944381955, 0.2485084634676915}, kTol, kTol);
  }
  SUBCASE("a norm under max_norm leaves the gradients as they are") {
    Problem p;
    p.set_grads();
    CHECK(optim::clip_grad_norm(p.params(), 100.0) == doctest::Approx(2.917404668536746).epsilon(1e-14));
    check_values(p.pa.grad(), {0.7, -2.1, 1.0, 0.8, 0.22499999999999998, 1.1}, kTol, kTol);
    check_values(p.pb.grad(), {-0.43, -0.010000000000000009, 0.725}, kTol, kTol);
  }
}

namespace {

// Runs `total` steps in one go, and `first` steps + state through a file + the rest with a fresh
// optimiser on the same parameter values: both must agree bitwise (a checkpointed run resumes exactly).
void check_resume(const std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>& make, int first,
                  int total) {
  Problem straight;
  auto opt_a = make(straight.params());
  straight.run(*opt_a, total);

  Problem before;
  auto opt_b = make(before.params());
  before.run(*opt_b, first);
  const std::string path = "test_optim_state.safetensors";
  serialize::save_tensors(path, opt_b->state());

  Problem after;
  {
    NoGradGuard no_grad;
    after.pa.copy_(before.pa), after.pb.copy_(before.pb);
  }
  auto opt_c = make(after.params());
  opt_c->load_state(serialize::load_tensors(path));
  after.run(*opt_c, total - first);
  std::remove(path.c_str());
  CHECK(mg::testing::bitwise_equal(after.pa, straight.pa));
  CHECK(mg::testing::bitwise_equal(after.pb, straight.pb));
}

}  // namespace

TEST_CASE("optimiser state saved and restored continues bitwise like an uninterrupted run") {
  SUBCASE("AdamW") {
    check_resume(
        [](std::vector<Tensor> ps) {
          return std::make_unique<optim::AdamW>(ps, optim::AdamWOptions(0.01).weight_decay(0.05));
        },
        2, 5);
  }
  SUBCASE("SGD, nesterov") {
    check_resume(
        [](std::vector<Tensor> ps) {
          return std::make_unique<optim::SGD>(ps,
                                              optim::SGDOptions(0.05).momentum(0.9).weight_decay(0.05).nesterov(true));
        },
        2, 5);
  }
}

TEST_CASE("load_state is strict and changes nothing on error") {
  Problem p;
  optim::AdamW opt(p.params(), 0.01);
  p.run(opt, 2);
  const nn::NamedTensors good = opt.state();
  auto snapshot = [&] {
    std::vector<double> v;
    for (const auto& [n, t] : opt.state())
      for (double x : t.to_vector()) v.push_back(x);
    return v;
  };
  const std::vector<double> before = snapshot();

  nn::NamedTensors bad_shape;
  for (const auto& [n, t] : good) bad_shape.emplace_back(n, n == "exp_avg_sq.1" ? zeros({4}, DType::Float64) : t);
  CHECK_THROWS_MG(opt.load_state(bad_shape), "load_state", "exp_avg_sq.1", "[4]");

  nn::NamedTensors missing(good.begin(), good.end() - 1);
  CHECK_THROWS_MG(opt.load_state(missing), "missing", "exp_avg_sq.1");

  nn::NamedTensors unknown = good;
  unknown.emplace_back("exp_avg.2", zeros({3}, DType::Float64));  // a third parameter this optimiser lacks
  unknown.emplace_back("momentum_buffer.0", zeros({2, 3}, DType::Float64));
  CHECK_THROWS_MG(opt.load_state(unknown), "unexpected", "exp_avg.2", "momentum_buffer.0");

  optim::SGD sgd(p.params(), optim::SGDOptions(0.1).momentum(0.9));
  CHECK_THROWS_MG(sgd.load_state(good), "SGD load_state", "unexpected", "exp_avg.0");
  // "momentum_buffer.01" names parameter 1 only in a form state() never writes: it would be
  // accepted, then silently not loaded.
  CHECK_THROWS_MG(sgd.load_state({{"momentum_buffer.01", zeros({3}, DType::Float64)}}), "unexpected",
                  "momentum_buffer.01");

  CHECK(snapshot() == before);
  CHECK(opt.step_count() == 2);
}
