#include "maxgrad/nn/layers.h"

#include <cmath>

namespace mg::nn {

namespace {
// torch.nn's default for Linear and Conv2d weights and biases: kaiming_uniform_(a=sqrt(5)) reduces
// to U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias uses the same bound.
Tensor uniform_fan_in(const Shape& shape, int64_t fan_in, Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return add(mul(rand(shape, gen), 2 * bound), -bound);
}
}  // namespace

Linear::Linear(const LinearOptions& o, Generator& gen) {
  const int64_t in = o.in_features(), out = o.out_features();
  MG_CHECK(in > 0 && out > 0, "Linear", "features must be positive, got in ", in, ", out ", out);
  weight = register_parameter("weight", uniform_fan_in({out, in}, in, gen));
  if (o.bias()) bias = register_parameter("bias", uniform_fan_in({out}, in, gen));
}

Conv2d::Conv2d(const Conv2dOptions& o, Generator& gen) : stride(o.stride()), padding(o.padding()), groups(o.groups()) {
  const int64_t in = o.in_channels(), out = o.out_channels(), k = o.kernel_size();
  MG_CHECK(in > 0 && out > 0 && k > 0 && groups > 0 && in % groups == 0 && out % groups == 0, "Conv2d",
           "invalid channels ", in, " -> ", out, " with groups ", groups, " and kernel ", k,
           " (channels must be divisible by groups)");
  MG_CHECK(stride > 0 && padding >= 0, "Conv2d", "invalid stride ", stride, " or padding ", padding);
  const int64_t fan_in = in / groups * k * k;
  weight = register_parameter("weight", uniform_fan_in({out, in / groups, k, k}, fan_in, gen));
  if (o.bias()) bias = register_parameter("bias", uniform_fan_in({out}, fan_in, gen));
}

LayerNorm::LayerNorm(int64_t features, double eps) : eps(eps) {
  weight = register_parameter("weight", ones({features}));
  bias = register_parameter("bias", zeros({features}));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const ModulePtr& m : layers_) y = m->forward(y);
  return y;
}

SqueezeExcitation::SqueezeExcitation(int64_t channels, int64_t squeeze_channels, Generator& gen) {
  fc1 = register_module("fc1", std::make_shared<Conv2d>(Conv2dOptions(channels, squeeze_channels, 1), gen));
  fc2 = register_module("fc2", std::make_shared<Conv2d>(Conv2dOptions(squeeze_channels, channels, 1), gen));
}

// x (N, C, H, W) * scale (N, C, 1, 1)
Tensor SqueezeExcitation::forward(const Tensor& x) {
  Tensor s = adaptive_avg_pool2d(x, 1);
  s = sigmoid(fc2->forward(silu(fc1->forward(s))));
  return mul(s, x);
}

}  // namespace mg::nn
