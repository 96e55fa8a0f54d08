// Cross-entropy as torch.nn.functional.cross_entropy (reduction "mean"), with either kind of target:
//
//   class indices y (N) int64       q_i = (1 - e) onehot(y_i) + e / K
//   probabilities t (N, K) float    q_i = (1 - e) t_i + e / K        (mixup / cutmix, data/mixup.h)
//
// With p = softmax(x) over K classes and label smoothing e, both are one formula:
//
//   forward   loss = 1/N sum_i -sum_k q_ik log p_ik
//   backward  d loss / d x_ik = (p_ik s_i - q_ik) / N,   s_i = sum_k q_ik
//
// s_i is 1 for a probability target, so the gradient is the familiar (p - q) / N. PyTorch also accepts
// targets that do not sum to 1; then s_i = (1 - e) T_i + e with T_i = sum_k t_ik, and the gradient gains
// p (1 - e)(T_i - 1) / N, which is exactly 0 for one-hot rows. Class indices are computed as just
// that: each becomes a one-hot row, and both kinds of target take the one code path below.
#include <cmath>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/ops.h"

namespace mg {

namespace {

void check_logits(const Tensor& logits, double label_smoothing) {
  MG_CHECK(logits.dim() == 2, "cross_entropy", "logits must be (N, K), got ", logits.info());
  MG_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy", "label_smoothing must be in [0, 1], got ",
           label_smoothing);
  MG_CHECK(logits.size(0) > 0, "cross_entropy", "empty batch");
}

// logits (N, K), target (N, K) float probabilities -> mean loss, shape []
Tensor cross_entropy_probs(const Tensor& logits, const Tensor& target, double label_smoothing) {
  MG_CHECK(target.shape() == logits.shape(), "cross_entropy", "target ", target.info(),
           " fits neither kind for logits ", logits.info(), ": int64 class indices need [", logits.size(0),
           "], float probabilities [", logits.size(0), ", ", logits.size(1), "]");
  MG_CHECK(!target.requires_grad(), "cross_entropy",
           "no gradient flows to probability targets here; pass target.detach() (got ", target.info(),
           " that requires grad)");
  const int64_t n = logits.size(0), k = logits.size(1);
  Tensor t = target.to(logits.dtype()).contiguous();
  Tensor logp = log_softmax(logits.detach(), 1).contiguous();
  const double e = label_smoothing;
  // Per row: hard = sum_k t_k log p_k and smooth = sum_k log p_k, so -sum_k q_k log p_k = -(1-e) hard - e/K smooth,
  // the class-index path's expression (a one-hot row's hard is log p_y exactly).
  Tensor loss = MG_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    const scalar_t* lp = logp.data<scalar_t>();
    const scalar_t* tp = t.data<scalar_t>();
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const scalar_t* row = lp + i * k;
      double hard = 0, smooth = 0;
      for (int64_t c = 0; c < k; ++c) hard += static_cast<double>(tp[i * k + c]) * row[c];
      if (e > 0)
        for (int64_t c = 0; c < k; ++c) smooth += row[c];
      total += -(1 - e) * hard - e / static_cast<double>(k) * smooth;
    }
    return Tensor::scalar(total / static_cast<double>(n), logits.dtype());
  });

  record("cross_entropy", loss, {logits}, [logp, t, e, n, k](const Tensor& g) {
    // d loss / d logits_ic = (p_ic - q_ic + p_ic (1 - e)(T_i - 1)) / N, times the incoming scalar gradient
    Tensor gx = Tensor::empty(logp.shape(), logp.dtype());
    MG_DISPATCH_FLOAT(logp.dtype(), "cross_entropy backward", [&] {
      const scalar_t* lp = logp.data<scalar_t>();
      const scalar_t* tp = t.data<scalar_t>();
      scalar_t* out = gx.data<scalar_t>();
      const double scale = g.item() / static_cast<double>(n);
      for (int64_t i = 0; i < n; ++i) {
        double total_t = 0;  // T_i
        for (int64_t c = 0; c < k; ++c) total_t += tp[i * k + c];
        for (int64_t c = 0; c < k; ++c) {
          const double p = std::exp(static_cast<double>(lp[i * k + c]));
          const double q = (1 - e) * tp[i * k + c] + e / static_cast<double>(k);
          out[i * k + c] = static_cast<scalar_t>((p - q + p * (1 - e) * (total_t - 1)) * scale);
        }
      }
    });
    return std::vector<Tensor>{gx};
  });
  return loss;
}

// logits (N, K), target (N) int64 -> the same as probabilities: each class index becomes a one-hot row
// (the arithmetic then gives exactly what a separate class-index formula would, bit for bit).
Tensor cross_entropy_classes(const Tensor& logits, const Tensor& target, double label_smoothing) {
  MG_CHECK(target.dim() == 1 && target.size(0) == logits.size(0), "cross_entropy", "target ", target.info(),
           " does not match logits ", logits.info(), " (expected [", logits.size(0), "])");
  const int64_t n = logits.size(0), k = logits.size(1);
  Tensor t = target.contiguous();
  const int64_t* y = t.data<int64_t>();
  std::vector<double> one_hot(static_cast<size_t>(n * k), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    MG_CHECK(y[i] >= 0 && y[i] < k, "cross_entropy", "target[", i, "] = ", y[i], " is out of range for ", k,
             " classes (expected 0..", k - 1, ")");
    one_hot[static_cast<size_t>(i * k + y[i])] = 1.0;
  }
  return cross_entropy_probs(logits, Tensor::from_vector(one_hot, {n, k}, logits.dtype()), label_smoothing);
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing) {
  check_logits(logits, label_smoothing);
  if (is_floating(target.dtype())) return cross_entropy_probs(logits, target, label_smoothing);
  return cross_entropy_classes(logits, target, label_smoothing);
}

}  // namespace mg
