// The errors of core/ops.h: for each op, each class of bad input (shape mismatch, bad dim,
// out-of-range index, dtype mismatch) throws mg::Error whose message names the op and the shapes,
// so the caller can fix the call without reading the source. (The Tensor methods' errors are in
// test_tensor.cpp, the engine's in test_autograd.cpp.)
#include <doctest/doctest.h>

#include "maxgrad/core/factory.h"
#include "maxgrad/core/generator.h"
#include "maxgrad/core/ops.h"
#include "helpers.h"

using namespace mg;

namespace {
Tensor f32(const Shape& s) { return zeros(s); }
Tensor f64(const Shape& s) { return zeros(s, DType::Float64); }
Tensor i64(const std::vector<int64_t>& v, const Shape& s) { return Tensor::from_vector_i64(v, s); }
}  // namespace

TEST_CASE("elementwise ops: shapes that do not broadcast, mixed dtypes, integer inputs") {
  CHECK_THROWS_MG(add(f32({2, 3}), f32({4})), "add", "[2, 3]", "[4]", "cannot be broadcast", "equal or 1");
  CHECK_THROWS_MG(sub(f32({2, 3}), f32({3, 2})), "sub", "[2, 3]", "[3, 2]");
  CHECK_THROWS_MG(mul(f32({5, 1, 3}), f32({4, 2})), "mul", "[5, 1, 3]", "[4, 2]");
  CHECK_THROWS_MG(div(f32({2}), f32({3})), "div", "[2]", "[3]");
  CHECK_THROWS_MG(f32({2}) + f32({3}), "add");
  CHECK_THROWS_MG(add(f32({2}), f64({2})), "add", "dtype mismatch", "float32[2]", "float64[2]");
  CHECK_THROWS_MG(mul(f64({2, 2}), f32({2})), "mul", "float64[2, 2]", "float32[2]");
  CHECK_THROWS_MG(add(i64({1}, {1}), i64({1}, {1})), "add", "int64");
  CHECK_THROWS_MG(exp(i64({1, 2}, {2})), "exp", "int64");
  CHECK_THROWS_MG(gelu(i64({1}, {1})), "gelu", "int64");
  CHECK_THROWS_MG(mul(i64({1}, {1}), 2.0), "mul", "int64");
}

TEST_CASE("reductions: bad and repeated dims, too few elements") {
  Tensor x = f32({2, 3});
  CHECK_THROWS_MG(sum(x, {2}), "sum", "dimension 2", "2 dims", "[-2, 1]");
  CHECK_THROWS_MG(sum(x, {-3}), "sum", "dimension -3");
  CHECK_THROWS_MG(sum(x, {1, -1}), "sum", "dim 1 appears twice");
  CHECK_THROWS_MG(mean(x, {5}), "mean", "dimension 5");
  CHECK_THROWS_MG(mean(f32({0, 3}), {0}), "mean", "empty", "float32[0, 3]");
  CHECK_THROWS_MG(var(x, {3}), "var", "dimension 3");
  CHECK_THROWS_MG(var(f32({1, 3}), {0}), "var", "more than 1", "float32[1, 3]");
  CHECK_THROWS_MG(var(x, {1}, 3), "var", "more than 3", "float32[2, 3]");
  CHECK_THROWS_MG(max(x, 2), "max", "dimension 2");
  CHECK_THROWS_MG(argmax(x, -3), "argmax", "dimension -3");
  CHECK_THROWS_MG(argmax(f32({2, 0}), 1), "argmax", "empty", "float32[2, 0]");
}

TEST_CASE("0-d tensors have no dims to name") {
  Tensor s = Tensor::scalar(1.5);
  CHECK_THROWS_MG(s.size(0), "size", "0 dims");
  CHECK_THROWS_MG(sum(s, {0}), "sum", "0 dims");
  CHECK_THROWS_MG(max(s, 0), "0 dims");
  CHECK_THROWS_MG(s.narrow(0, 0, 1), "narrow", "0 dims");
  CHECK_THROWS_MG(s.select(0, 0), "select", "0 dims");
  CHECK_THROWS_MG(s.split(1, 0), "split", "0 dims");
  CHECK_THROWS_MG(cat({s, s}, 0), "cat", "0 dims");
  CHECK_THROWS_MG(index_select(s, 0, i64({0}, {1})), "index_select", "0 dims");
  CHECK_THROWS_MG(gather(s, 0, Tensor::from_vector_i64({0}, {})), "gather", "0 dims");
  CHECK_THROWS_MG(softmax(s, 0), "softmax", "0 dims");
  CHECK_THROWS_MG(s.transpose(0, -1), "transpose", "0 dims");
  // what works on them: whole-tensor ops, unsqueeze, stack, flatten
  CHECK(sum(s).item() == 1.5);
  CHECK(mean(s).item() == 1.5);
  CHECK(s.unsqueeze(0).shape() == Shape{1});
  CHECK(s.unsqueeze(-1).shape() == Shape{1});
  CHECK(stack({s, s}, 0).shape() == Shape{2});
  CHECK(s.flatten().shape() == Shape{1});
  CHECK(s.reshape({1, 1}).shape() == Shape{1, 1});
}

TEST_CASE("cat and stack: mismatched shapes, dims and dtypes") {
  CHECK_THROWS_MG(cat({}, 0), "cat", "at least one");
  CHECK_THROWS_MG(cat({f32({2, 3}), f32({3, 3})}, 1), "cat", "tensor 1", "float32[3, 3]", "float32[2, 3]", "dim 0",
                  "only dim 1 may differ");
  CHECK_THROWS_MG(cat({f32({2, 3}), f32({2})}, 0), "cat", "float32[2]", "float32[2, 3]", "number of dims");
  CHECK_THROWS_MG(cat({f32({2}), f64({2})}, 0), "cat", "float64[2]", "float32[2]");
  CHECK_THROWS_MG(cat({f32({2, 3})}, 2), "cat", "dimension 2");
  CHECK_THROWS_MG(stack({f32({2, 3}), f32({2, 4})}, 0), "stack", "float32[2, 4]", "float32[2, 3]", "equal shapes");
  CHECK_THROWS_MG(stack({f32({2})}, 3), "stack", "dimension 3");
  CHECK_THROWS_MG(stack({}, 0), "stack", "at least one");
}

TEST_CASE("matmul and linear: inner sizes, batch dims, dtypes") {
  CHECK_THROWS_MG(matmul(f32({2, 3}), f32({4, 5})), "matmul", "float32[2, 3]", "float32[4, 5]", "inner dimensions",
                  "last dim 3", "second-to-last dim 4");
  CHECK_THROWS_MG(matmul(f32({3}), f32({4})), "matmul", "float32[3]", "float32[4]");
  CHECK_THROWS_MG(matmul(f32({2, 3, 4}), f32({3, 4, 5})), "matmul", "[2]", "[3]", "cannot be broadcast");
  CHECK_THROWS_MG(matmul(Tensor::scalar(1), f32({2})), "matmul", "at least 1 dim", "float32[]");
  CHECK_THROWS_MG(matmul(f32({2, 2}), f64({2, 2})), "matmul", "dtype mismatch", "float32[2, 2]", "float64[2, 2]");

  CHECK_THROWS_MG(linear(f32({4, 5}), f32({3, 6})), "linear", "float32[4, 5]", "5 features", "float32[3, 6]",
                  "expects 6");
  CHECK_THROWS_MG(linear(f32({4, 5}), f32({5})), "linear", "(out_features, in_features)", "float32[5]");
  CHECK_THROWS_MG(linear(f32({4, 5}), f32({3, 5}), f32({4})), "linear", "bias float32[4]", "float32[3, 5]", "[3]");
  CHECK_THROWS_MG(linear(f32({4, 5}), f64({3, 5})), "linear", "dtype mismatch", "float32[4, 5]", "float64[3, 5]");
  CHECK_THROWS_MG(linear(f32({4, 5}), f32({3, 5}), f64({3})), "linear", "dtype mismatch", "float64[3]");
}

TEST_CASE("conv2d: layouts, channels, groups, sizes, dtypes") {
  Tensor x = f32({2, 4, 5, 5});
  CHECK_THROWS_MG(conv2d(f32({4, 5, 5}), f32({2, 4, 3, 3})), "conv2d", "(N, C, H, W)", "float32[4, 5, 5]");
  CHECK_THROWS_MG(conv2d(x, f32({2, 4, 3})), "conv2d", "weight", "float32[2, 4, 3]");
  CHECK_THROWS_MG(conv2d(x, f32({2, 3, 3, 3})), "conv2d", "float32[2, 3, 3, 3]", "expects 3 input channels",
                  "float32[2, 4, 5, 5]", "has 4");
  CHECK_THROWS_MG(conv2d(x, f32({3, 2, 3, 3}), Tensor(), 1, 0, 2), "conv2d", "out_channels 3", "groups 2");
  CHECK_THROWS_MG(conv2d(x, f32({2, 1, 3, 3}), Tensor(), 1, 0, 3), "conv2d", "in_channels 4", "groups 3");
  CHECK_THROWS_MG(conv2d(x, f32({2, 4, 3, 3}), f32({3})), "conv2d", "bias float32[3]", "[2]");
  CHECK_THROWS_MG(conv2d(x, f32({2, 4, 7, 7})), "conv2d", "kernel 7x7", "padded input 5x5", "float32[2, 4, 5, 5]");
  CHECK_THROWS_MG(conv2d(x, f32({2, 4, 3, 3}), Tensor(), 0), "conv2d", "stride 0");
  CHECK_THROWS_MG(conv2d(x, f32({2, 4, 3, 3}), Tensor(), 1, -1), "conv2d", "padding -1");
  CHECK_THROWS_MG(conv2d(x, f64({2, 4, 3, 3})), "conv2d", "dtype mismatch", "float32[2, 4, 5, 5]",
                  "float64[2, 4, 3, 3]");
  CHECK_THROWS_MG(conv2d(x, f32({2, 4, 3, 3}), f64({2})), "conv2d", "dtype mismatch", "float64[2]");
}

TEST_CASE("pooling: layouts and window sizes") {
  CHECK_THROWS_MG(avg_pool2d(f32({4, 5, 5}), 2, 2), "avg_pool2d", "(N, C, H, W)", "float32[4, 5, 5]");
  CHECK_THROWS_MG(avg_pool2d(f32({1, 1, 5, 5}), 2, 2, 2), "avg_pool2d", "padding 2", "half the kernel");
  CHECK_THROWS_MG(avg_pool2d(f32({1, 1, 2, 2}), 5, 1, 1), "avg_pool2d", "kernel 5", "float32[1, 1, 2, 2]");
  CHECK_THROWS_MG(avg_pool2d(f32({1, 1, 4, 4}), 2, 0), "avg_pool2d", "stride 0");
  CHECK_THROWS_MG(adaptive_avg_pool2d(f32({1, 1, 4, 4}), 2), "adaptive_avg_pool2d", "output_size 1", "got 2");
  CHECK_THROWS_MG(adaptive_avg_pool2d(f32({4, 4}), 1), "adaptive_avg_pool2d", "float32[4, 4]");
}

TEST_CASE("softmax and cross_entropy: dims, target dtype, shape and range") {
  CHECK_THROWS_MG(softmax(f32({2, 3}), 2), "softmax", "dimension 2", "2 dims");
  CHECK_THROWS_MG(log_softmax(f32({2, 3}), -3), "log_softmax", "dimension -3");
  Tensor logits = f32({3, 5});
  CHECK_THROWS_MG(cross_entropy(f32({5}), i64({1}, {1})), "cross_entropy", "(N, K)", "float32[5]");
  CHECK_THROWS_MG(cross_entropy(logits, f32({3})), "cross_entropy", "int64", "float32[3]");
  CHECK_THROWS_MG(cross_entropy(logits, i64({1, 2}, {2})), "cross_entropy", "int64[2]", "float32[3, 5]", "[3]");
  CHECK_THROWS_MG(cross_entropy(logits, i64({1, 5, 0}, {3})), "cross_entropy", "target[1] = 5", "5 classes", "0..4");
  CHECK_THROWS_MG(cross_entropy(logits, i64({1, -1, 0}, {3})), "cross_entropy", "target[1] = -1");
  CHECK_THROWS_MG(cross_entropy(logits, i64({0, 0, 0}, {3}), 1.5), "cross_entropy", "label_smoothing", "1.5");
}

TEST_CASE("layer_norm and batch_norm: per-channel shapes, modes, dtypes") {
  Tensor x = f32({2, 3, 4});
  CHECK_THROWS_MG(layer_norm(x, f32({3}), Tensor()), "layer_norm", "float32[3]", "[4]", "float32[2, 3, 4]");
  CHECK_THROWS_MG(layer_norm(x, Tensor(), f32({4, 1})), "layer_norm", "float32[4, 1]");
  CHECK_THROWS_MG(layer_norm(x, f64({4}), Tensor()), "layer_norm", "dtype mismatch", "float64[4]", "float32[2, 3, 4]");
  CHECK_THROWS_MG(layer_norm(Tensor::scalar(1), Tensor(), Tensor()), "layer_norm", "at least 1 dim");

  Tensor rm = zeros({3}), rv = ones({3});
  CHECK_THROWS_MG(batch_norm(f32({3}), rm, rv, Tensor(), Tensor(), true, 0.1, 1e-5), "batch_norm", "(N, C, ...)",
                  "float32[3]");
  CHECK_THROWS_MG(batch_norm(x, zeros({4}), rv, Tensor(), Tensor(), true, 0.1, 1e-5), "batch_norm", "float32[4]", "[3]",
                  "float32[2, 3, 4]");
  CHECK_THROWS_MG(batch_norm(x, rm, rv, f32({2}), Tensor(), true, 0.1, 1e-5), "batch_norm", "float32[2]");
  CHECK_THROWS_MG(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false, 0.1, 1e-5), "batch_norm",
                  "running_mean and running_var");
  CHECK_THROWS_MG(batch_norm(f32({1, 3}), rm, rv, Tensor(), Tensor(), true, 0.1, 1e-5), "batch_norm",
                  "more than 1 value per channel", "float32[1, 3]");
  CHECK_THROWS_MG(batch_norm(x, rm, rv, f64({3}), Tensor(), true, 0.1, 1e-5), "batch_norm", "dtype mismatch",
                  "float64[3]");
}

TEST_CASE("dropout and drop_path: probability range") {
  Generator g(0);
  CHECK_THROWS_MG(dropout(f32({2}), 1.5, true, g), "dropout", "[0, 1]", "1.5");
  CHECK_THROWS_MG(drop_path(f32({2}), -0.1, true, g), "drop_path", "[0, 1]", "-0.1");
  CHECK_THROWS_MG(add_drop_path(f32({2}), f32({2}), 2.0, true, g), "add_drop_path", "[0, 1]", "2");
  CHECK_THROWS_MG(add_drop_path(f32({2}), f64({2}), 0.5, true, g), "add_drop_path", "dtype mismatch", "float64[2]");
}

TEST_CASE("to_token_rows and from_token_rows: shapes and the row order") {
  CHECK_THROWS_MG(to_token_rows(f32({2, 3}), {0, 1}), "to_token_rows", "(B, C, H, W)", "float32[2, 3]");
  CHECK_THROWS_MG(to_token_rows(f32({1, 2, 2, 2}), {0, 1, 2}), "to_token_rows", "3 entries for 4 positions");
  CHECK_THROWS_MG(to_token_rows(f32({1, 2, 1, 3}), {0, 2, 2}), "to_token_rows", "permutation of 0..2",
                  "row 2 appears twice");
  CHECK_THROWS_MG(from_token_rows(f32({1, 3, 2}), {0, 1, 7}, 1, 3), "from_token_rows", "row 7 is out of range");
  CHECK_THROWS_MG(from_token_rows(f32({1, 4, 2}), {0, 1, 2}, 1, 3), "from_token_rows", "(B, 3, C)", "1x3",
                  "float32[1, 4, 2]");
}

TEST_CASE("index_select and gather: index dtype, shape and range") {
  Tensor x = f32({3, 4});
  CHECK_THROWS_MG(index_select(x, 0, f32({2})), "index_select", "int64", "float32[2]");
  CHECK_THROWS_MG(index_select(x, 0, i64({0, 1}, {1, 2})), "index_select", "1-D", "int64[1, 2]");
  CHECK_THROWS_MG(index_select(x, 1, i64({0, 4}, {2})), "index_select", "index 4", "dim 1 of size 4", "float32[3, 4]");
  CHECK_THROWS_MG(index_select(x, 0, i64({-1}, {1})), "index_select", "index -1");
  CHECK_THROWS_MG(index_select(x, 2, i64({0}, {1})), "index_select", "dimension 2");
  CHECK_THROWS_MG(gather(x, 1, i64({0, 1}, {2})), "gather", "int64[2]", "float32[3, 4]", "as many dims");
  CHECK_THROWS_MG(gather(x, 1, i64({0, 1, 2, 3}, {2, 2})), "gather", "int64[2, 2]", "float32[3, 4]", "dim 0");
  CHECK_THROWS_MG(gather(x, 0, i64({0, 3, 1, 1, 0, 0, 0, 0}, {2, 4})), "gather", "index 3", "dim 0 of size 3");
  CHECK_THROWS_MG(gather(x, 1, f32({3, 1})), "gather", "int64", "float32[3, 1]");
}
