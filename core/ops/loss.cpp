// Cross-entropy with int64 class targets and label smoothing, as torch.nn.functional.cross_entropy
// (reduction "mean"). With smoothing e over K classes the target distribution is
// q = (1 - e) onehot(y) + e / K, the loss is -sum_k q_k log p_k, and its gradient is p - q.
#include <cmath>

#include "maxgrad/core/autograd.h"
#include "maxgrad/core/ops.h"

namespace mg {

// logits (N, K), target (N) -> mean loss, shape []
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing) {
  MG_CHECK(logits.dim() == 2, "cross_entropy", "logits must be (N, K), got ", logits.info());
  MG_CHECK(target.dtype() == DType::Int64, "cross_entropy", "target must be int64 class indices, got ", target.info());
  MG_CHECK(target.dim() == 1 && target.size(0) == logits.size(0), "cross_entropy", "target ", target.info(),
           " does not match logits ", logits.info(), " (expected [", logits.size(0), "])");
  MG_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy", "label_smoothing must be in [0, 1], got ",
           label_smoothing);
  const int64_t n = logits.size(0), k = logits.size(1);
  MG_CHECK(n > 0, "cross_entropy", "empty batch");
  Tensor t = target.contiguous();
  const int64_t* y = t.data<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    MG_CHECK(y[i] >= 0 && y[i] < k, "cross_entropy", "target[", i, "] = ", y[i], " is out of range for ", k,
             " classes (expected 0..", k - 1, ")");

  Tensor logp = log_softmax(logits.detach(), 1).contiguous();
  const double e = label_smoothing;
  Tensor loss = MG_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    const scalar_t* lp = logp.data<scalar_t>();
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const scalar_t* row = lp + i * k;
      double smooth = 0;
      if (e > 0)
        for (int64_t c = 0; c < k; ++c) smooth += row[c];
      total += -(1 - e) * row[y[i]] - e / static_cast<double>(k) * smooth;
    }
    return Tensor::scalar(total / static_cast<double>(n), logits.dtype());
  });

  record("cross_entropy", loss, {logits}, [logp, t, e, n, k](const Tensor& g) {
    // d loss / d logits = (softmax - q) / N, times the incoming scalar gradient
    Tensor gx = Tensor::empty(logp.shape(), logp.dtype());
    MG_DISPATCH_FLOAT(logp.dtype(), "cross_entropy backward", [&] {
      const scalar_t* lp = logp.data<scalar_t>();
      const int64_t* y = t.data<int64_t>();
      scalar_t* out = gx.data<scalar_t>();
      const double scale = g.item() / static_cast<double>(n);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < k; ++c) {
          double q = e / static_cast<double>(k) + (c == y[i] ? 1 - e : 0);
          out[i * k + c] = static_cast<scalar_t>((std::exp(static_cast<double>(lp[i * k + c])) - q) * scale);
        }
    });
    return std::vector<Tensor>{gx};
  });
  return loss;
}

}  // namespace mg
