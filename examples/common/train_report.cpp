#include "examples/common/train_report.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "examples/common/curves_png.h"

namespace mg::cli {

namespace {
constexpr int64_t kColumns = 9;        // epoch, step, lr, train_loss, train_acc, test_loss, test_acc, and precise
constexpr int64_t kColumnsBefore = 7;  // a checkpoint's history from before --precise-bn
}  // namespace

Tensor history_tensor(const std::vector<EpochRecord>& records) {
  std::vector<double> v;
  for (const EpochRecord& r : records)
    v.insert(v.end(), {static_cast<double>(r.epoch), static_cast<double>(r.step), r.lr, r.train_loss, r.train_acc,
                       r.test_loss, r.test_acc, r.test_loss_precise, r.test_acc_precise});
  return Tensor::from_vector(v, {static_cast<int64_t>(records.size()), kColumns}, DType::Float64);
}

Tensor history_seconds(const std::vector<EpochRecord>& records) {
  std::vector<double> v;
  for (const EpochRecord& r : records) v.push_back(r.seconds);
  return Tensor::from_vector(v, {static_cast<int64_t>(records.size())}, DType::Float64);
}

std::vector<EpochRecord> history_from(const Tensor& history, const Tensor& seconds) {
  MG_CHECK(history.dim() == 2 && (history.size(1) == kColumns || history.size(1) == kColumnsBefore) &&
               seconds.dim() == 1 && seconds.size(0) == history.size(0),
           "training history", "expected 'history' (E, ", kColumns, ") and 'history_seconds' (E), got ", history.info(),
           " and ", seconds.info());
  const std::vector<double> h = history.to_vector(), s = seconds.to_vector();
  std::vector<EpochRecord> out;
  for (size_t i = 0; i < s.size(); ++i) {
    const int64_t cols = history.size(1);
    const double* row = h.data() + static_cast<int64_t>(i) * cols;
    EpochRecord r{
        static_cast<int64_t>(row[0]), static_cast<int64_t>(row[1]), row[2], row[3], row[4], row[5], row[6], s[i]};
    if (cols == kColumns) r.test_loss_precise = row[7], r.test_acc_precise = row[8];
    out.push_back(r);
  }
  return out;
}

void write_log_csv(const std::string& path, const std::vector<EpochRecord>& records) {
  const std::string tmp = cat(path, ".tmp", getpid());
  {
    std::ofstream f(tmp);
    f << "epoch,step,lr,train_loss,train_acc,test_loss,test_acc,seconds,test_loss_precise_bn,test_acc_precise_bn\n";
    char line[256];
    for (const EpochRecord& r : records) {
      std::snprintf(line, sizeof line, "%lld,%lld,%.6e,%.6f,%.6f,%.6f,%.6f,%.1f,", static_cast<long long>(r.epoch),
                    static_cast<long long>(r.step), r.lr, r.train_loss, r.train_acc, r.test_loss, r.test_acc,
                    r.seconds);
      f << line;
      if (r.has_precise()) {
        std::snprintf(line, sizeof line, "%.6f,%.6f", r.test_loss_precise, r.test_acc_precise);
        f << line;
      } else {
        f << ",";
      }
      f << "\n";
    }
    MG_CHECK(f.flush().good(), "train_cifar", "cannot write ", tmp);
  }
  MG_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "train_cifar", "cannot write ", path);
}

std::string summary_line(const EpochRecord& r, int64_t epochs) {
  char buf[320], precise[64] = "";
  if (r.has_precise())
    std::snprintf(precise, sizeof precise, " (precise BN %.4f %.2f%%)", r.test_loss_precise, 100 * r.test_acc_precise);
  std::snprintf(buf, sizeof buf,
                "epoch %lld/%lld  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%%s  lr %.2e  %.1f s",
                static_cast<long long>(r.epoch), static_cast<long long>(epochs), r.train_loss, 100 * r.train_acc,
                r.test_loss, 100 * r.test_acc, precise, r.lr, r.seconds);
  return buf;
}

std::string bn_gap_note(const EpochRecord& r, double momentum) {
  if (!r.has_precise()) return "";
  const double gap = 100 * (r.test_acc_precise - r.test_acc);
  if (std::fabs(gap) <= 3) return "";
  char buf[400];
  if (gap > 0 && momentum > 0.5)
    std::snprintf(buf, sizeof buf,
                  "note: %.1f points better with precise BatchNorm statistics: at momentum %g the running ones follow "
                  "only the last batches (a TensorFlow decay in PyTorch's convention? docs/batchnorm.md)",
                  gap, momentum);
  else if (gap > 0)
    std::snprintf(buf, sizeof buf,
                  "note: %.1f points better with precise BatchNorm statistics: the running ones average the last "
                  "~%.0f steps, taken while the weights were still moving, so they lag the weights "
                  "(docs/batchnorm.md)",
                  gap, momentum > 0 ? 1 / momentum : 0.0);
  else
    std::snprintf(buf, sizeof buf,
                  "note: %.1f points worse with precise BatchNorm statistics than with the running ones: the "
                  "running ones were gathered as the weights were trained (augmented images, stochastic depth "
                  "on), the precise ones as evaluation runs, and late in training the weights fit the former "
                  "(docs/batchnorm.md)",
                  -gap);
  return buf;
}

void write_curves(const std::string& path, const std::vector<EpochRecord>& records) {
  const std::array<unsigned char, 3> blue{31, 119, 180}, orange{255, 127, 14};
  const std::array<unsigned char, 3> green{44, 160, 44};
  Series train_loss{"TRAIN", blue, {}}, test_loss{"TEST", orange, {}}, precise_loss{"TEST PRECISE BN", green, {}};
  Series train_acc{"TRAIN", blue, {}}, test_acc{"TEST", orange, {}}, precise_acc{"TEST PRECISE BN", green, {}};
  bool precise = true;
  for (const EpochRecord& r : records) {
    train_loss.y.push_back(r.train_loss), test_loss.y.push_back(r.test_loss);
    train_acc.y.push_back(100 * r.train_acc), test_acc.y.push_back(100 * r.test_acc);
    precise_loss.y.push_back(r.test_loss_precise), precise_acc.y.push_back(100 * r.test_acc_precise);
    precise = precise && r.has_precise();
  }
  Panel loss{"LOSS", {train_loss, test_loss}, true, 0}, acc{"ACCURACY %", {train_acc, test_acc}, true, 100};
  if (precise && !records.empty()) loss.series.push_back(precise_loss), acc.series.push_back(precise_acc);
  write_curves_png(path, {loss, acc});
}

std::string confusion_table(const std::vector<int64_t>& counts, const std::vector<std::string>& classes) {
  const size_t k = classes.size();
  MG_CHECK(counts.size() == k * k, "confusion_table", counts.size(), " counts for ", k, " classes");
  size_t name_w = 4;
  for (const auto& c : classes) name_w = std::max(name_w, c.size());
  int64_t most = 1;
  for (int64_t c : counts) most = std::max(most, c);
  // Columns are headed by the first letters of each class, as wide as the largest count needs.
  const int cell = std::max<int>(5, static_cast<int>(std::to_string(most).size()) + 1);
  std::string out = "confusion matrix (rows: true class, columns: predicted)\n";
  out += std::string(name_w, ' ');
  for (const auto& c : classes) {
    std::string head = c.substr(0, static_cast<size_t>(cell - 1));
    out += std::string(static_cast<size_t>(cell) - head.size(), ' ') + head;
  }
  out += "  recall\n";
  for (size_t t = 0; t < k; ++t) {
    out += classes[t] + std::string(name_w - classes[t].size(), ' ');
    int64_t row = 0;
    for (size_t p = 0; p < k; ++p) {
      const std::string v = std::to_string(counts[t * k + p]);
      out += std::string(static_cast<size_t>(cell) - v.size(), ' ') + v;
      row += counts[t * k + p];
    }
    char recall[32];
    std::snprintf(recall, sizeof recall, "  %5.1f%%\n",
                  row ? 100.0 * static_cast<double>(counts[t * k + t]) / row : 0.0);
    out += recall;
  }
  return out;
}

}  // namespace mg::cli
