// cross_entropy with probability targets (mixup / cutmix targets) against torch.nn.functional.cross_entropy
// (torch 1.13, float64 and float32, label smoothing 0, 0.1, 0.3, targets that sum to 1 and targets that do
// not), from tests/golden/recipe/loss.safetensors (made by tests/golden/recipe/make_recipe.py); gradcheck;
// and one-hot targets giving the class-index path's numbers bit for bit.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>

#include "gradcheck.h"
#include "helpers.h"
#include "maxgrad/core/factory.h"
#include "maxgrad/core/ops.h"
#include "maxgrad/nn/serialize/serialize.h"

using namespace mg;

namespace {

std::map<std::string, Tensor> fixture(const std::string& file) { return testing::recipe_fixture(file); }

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), a.info(), " vs ", b.info());
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}

std::string e_name(double e) { return e == 0 ? "0.0" : e == 0.1 ? "0.1" : "0.3"; }

}  // namespace

TEST_CASE("cross_entropy with probability targets matches torch's values and gradients") {
  auto g = fixture("loss.safetensors");
  for (DType dt : {DType::Float64, DType::Float32}) {
    const std::string dn = dt == DType::Float64 ? "f64" : "f32";
    // torch computes float32 in float32; here the sums are in double: agreement to float rounding
    const double tol = dt == DType::Float64 ? 1e-14 : 2e-6;
    for (const char* kind : {"probs", "loose"})
      for (double e : {0.0, 0.1, 0.3}) {
        const std::string key = dn + "." + kind + ".e" + e_name(e);
        CAPTURE(key);
        Tensor x = g.at("logits").to(dt).clone();  // a leaf of its own: the fixture's tensor stays as it is
        x.requires_grad_();
        Tensor loss = cross_entropy(x, g.at(std::string("target.") + kind).to(dt), e);
        loss.backward();
        CHECK(loss.dtype() == dt);
        CHECK(std::fabs(loss.item() - g.at("loss." + key).item()) <= tol * 4);
        CHECK(max_abs_diff(x.grad(), g.at("grad." + key)) <= tol);
      }
  }
}

TEST_CASE("one-hot probability targets give the class-index loss and gradient bit for bit") {
  mg::testing::Inputs in(3);
  const std::vector<int64_t> y = {2, 0, 4, 4, 1};
  std::vector<double> onehot(5 * 6, 0.0);
  for (size_t i = 0; i < y.size(); ++i) onehot[i * 6 + static_cast<size_t>(y[i])] = 1.0;
  for (DType dt : {DType::Float64, DType::Float32})
    for (double e : {0.0, 0.1, 0.3, 1.0}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(e);
      Tensor a = in.randn({5, 6}).to(dt), b = a.detach().clone();
      a.requires_grad_(), b.requires_grad_();
      Tensor la = cross_entropy(a, Tensor::from_vector_i64(y, {5}), e);
      Tensor lb = cross_entropy(b, Tensor::from_vector(onehot, {5, 6}, dt), e);
      la.backward(), lb.backward();
      CHECK(mg::testing::bitwise_equal(la, lb));
      CHECK(mg::testing::bitwise_equal(a.grad(), b.grad()));
    }
}

TEST_CASE("gradcheck cross_entropy with probability targets") {
  mg::testing::Inputs in(5);
  Tensor probs = softmax(in.randn({4, 5}), 1);
  Tensor loose = in.uniform({4, 5}, 0, 1);  // rows not summing to 1: the gradient's p (1 - e)(T - 1) term
  Tensor strided = in.uniform({4, 10}, 0, 1).narrow(1, 2, 5);
  for (const Tensor& t : {probs, loose, strided})
    for (double e : {0.0, 0.1, 0.5}) {
      CAPTURE(e);
      CHECK_GRADCHECK([&](const std::vector<Tensor>& x) { return cross_entropy(x[0], t, e); }, {in.randn({4, 5})});
      CHECK_GRADCHECK([&](const std::vector<Tensor>& x) { return cross_entropy(x[0], t, e); }, {in.permuted({4, 5})});
    }
  // through a scaled loss: the incoming gradient is not 1
  CHECK_GRADCHECK([&](const std::vector<Tensor>& x) { return mul(cross_entropy(x[0], probs, 0.1), 3.0); },
                  {in.randn({4, 5})});
}

TEST_CASE("probability targets: dtype conversion and errors that name the shapes") {
  mg::testing::Inputs in(7);
  Tensor x = in.randn({3, 4});
  Tensor t = softmax(in.randn({3, 4}), 1);
  // float32 logits with float64 targets: the target is converted to float32 first
  CHECK(cross_entropy(x.to(DType::Float32), t).item() ==
        cross_entropy(x.to(DType::Float32), t.to(DType::Float32)).item());
  CHECK_THROWS_MG(cross_entropy(x, in.randn({3, 5})), "cross_entropy", "float64[3, 5]", "float64[3, 4]", "int64", "[3]",
                  "[3, 4]");
  CHECK_THROWS_MG(cross_entropy(x, in.randn({3})), "cross_entropy", "float64[3]", "int64 class indices need [3]");
  Tensor needs_grad = in.randn({3, 4});
  needs_grad.requires_grad_();
  CHECK_THROWS_MG(cross_entropy(x, needs_grad), "cross_entropy", "detach()");
  CHECK_THROWS_MG(cross_entropy(x, t, -0.1), "cross_entropy", "label_smoothing");
}
