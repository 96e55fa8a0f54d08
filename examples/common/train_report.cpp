#include "examples/common/train_report.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "examples/common/curves_png.h"
#include "maxgrad/nn/serialize/atomic_file.h"

namespace mg::cli {

namespace {
constexpr int64_t kColumns = 17;  // epoch, step, lr, train_loss, train_acc, test_loss, test_acc, then as below
constexpr int64_t kColumnsPrecise = 9, kColumnsBefore = 7;  // histories from before --val-split, --precise-bn
}  // namespace

double EpochRecord::final_test_acc() const {
  if (!std::isnan(test_acc_tta)) return test_acc_tta;
  if (!std::isnan(test_acc_ema)) return test_acc_ema;
  if (!std::isnan(test_acc_precise)) return test_acc_precise;
  return test_acc;
}

Tensor history_tensor(const std::vector<EpochRecord>& records) {
  std::vector<double> v;
  for (const EpochRecord& r : records)
    v.insert(v.end(),
             {static_cast<double>(r.epoch), static_cast<double>(r.step), r.lr, r.train_loss, r.train_acc, r.test_loss,
              r.test_acc, r.test_loss_precise, r.test_acc_precise, r.val_loss, r.val_acc, r.val_loss_precise,
              r.val_acc_precise, r.test_acc_ema, r.val_acc_ema, r.test_acc_tta, r.val_acc_tta});
  return Tensor::from_vector(v, {static_cast<int64_t>(records.size()), kColumns}, DType::Float64);
}

Tensor history_seconds(const std::vector<EpochRecord>& records) {
  std::vector<double> v;
  for (const EpochRecord& r : records) v.push_back(r.seconds);
  return Tensor::from_vector(v, {static_cast<int64_t>(records.size())}, DType::Float64);
}

std::vector<EpochRecord> history_from(const Tensor& history, const Tensor& seconds) {
  MG_CHECK(
      history.dim() == 2 &&
          (history.size(1) == kColumns || history.size(1) == kColumnsPrecise || history.size(1) == kColumnsBefore) &&
          seconds.dim() == 1 && seconds.size(0) == history.size(0),
      "training history", "expected 'history' (E, ", kColumns, ") and 'history_seconds' (E), got ", history.info(),
      " and ", seconds.info());
  const std::vector<double> h = history.to_vector(), s = seconds.to_vector();
  std::vector<EpochRecord> out;
  for (size_t i = 0; i < s.size(); ++i) {
    const int64_t cols = history.size(1);
    const double* row = h.data() + static_cast<int64_t>(i) * cols;
    // Cast to integers only once known to be whole numbers in range (a NaN cast is undefined).
    for (int c : {0, 1})
      MG_CHECK(row[c] >= 0 && row[c] <= 0x1p53 && row[c] == std::floor(row[c]), "training history", "row ", i,
               " holds ", row[c], " where a whole ", c == 0 ? "epoch" : "step", " number belongs");
    EpochRecord r{
        static_cast<int64_t>(row[0]), static_cast<int64_t>(row[1]), row[2], row[3], row[4], row[5], row[6], s[i]};
    if (cols >= kColumnsPrecise) r.test_loss_precise = row[7], r.test_acc_precise = row[8];
    if (cols == kColumns) {
      r.val_loss = row[9], r.val_acc = row[10], r.val_loss_precise = row[11], r.val_acc_precise = row[12];
      r.test_acc_ema = row[13], r.val_acc_ema = row[14], r.test_acc_tta = row[15], r.val_acc_tta = row[16];
    }
    out.push_back(r);
  }
  return out;
}

void write_log_csv(const std::string& path, const std::vector<EpochRecord>& records) {
  {
    std::ostringstream f;
    f << "epoch,step,lr,train_loss,train_acc,test_loss,test_acc,seconds,test_loss_precise_bn,test_acc_precise_bn,"
         "val_loss,val_acc,val_loss_precise_bn,val_acc_precise_bn,test_acc_ema,val_acc_ema,test_acc_tta,val_acc_tta\n";
    // A value that was not evaluated (NaN) is an empty field.
    auto field = [](double v) {
      char buf[32] = "";
      if (!std::isnan(v)) std::snprintf(buf, sizeof buf, "%.6f", v);
      return std::string(buf);
    };
    char line[128];
    for (const EpochRecord& r : records) {
      std::snprintf(line, sizeof line, "%lld,%lld,%.6e,%.6f,%.6f,", static_cast<long long>(r.epoch),
                    static_cast<long long>(r.step), r.lr, r.train_loss, r.train_acc);
      std::snprintf(line + std::strlen(line), sizeof line - std::strlen(line), "%s,%s,%.1f", field(r.test_loss).c_str(),
                    field(r.test_acc).c_str(), r.seconds);
      f << line;
      for (double v : {r.test_loss_precise, r.test_acc_precise, r.val_loss, r.val_acc, r.val_loss_precise,
                       r.val_acc_precise, r.test_acc_ema, r.val_acc_ema, r.test_acc_tta, r.val_acc_tta})
        f << "," << field(v);
      f << "\n";
    }
    serialize::write_file_atomically(path, f.str());  // never half a log, whatever happens
  }
}

std::string summary_line(const EpochRecord& r, int64_t epochs) {
  // "  val loss 1.1000 acc 60.12% (precise BN 1.0500 63.40%, EMA 64.00%, TTA 64.90%)"
  auto split = [](const char* name, double loss, double acc, double loss_p, double acc_p, double ema, double tta) {
    if (std::isnan(acc)) return std::string();
    char buf[200];
    int n = std::snprintf(buf, sizeof buf, "  %s loss %.4f acc %.2f%%", name, loss, 100 * acc);
    std::string extra;
    char part[64];
    if (!std::isnan(acc_p))
      std::snprintf(part, sizeof part, "precise BN %.4f %.2f%%", loss_p, 100 * acc_p), extra += part;
    if (!std::isnan(ema))
      std::snprintf(part, sizeof part, "%sEMA %.2f%%", extra.empty() ? "" : ", ", 100 * ema), extra += part;
    if (!std::isnan(tta))
      std::snprintf(part, sizeof part, "%sTTA %.2f%%", extra.empty() ? "" : ", ", 100 * tta), extra += part;
    if (!extra.empty()) std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), " (%s)", extra.c_str());
    return std::string(buf);
  };
  char head[96], tail[48];
  std::snprintf(head, sizeof head, "epoch %lld/%lld  train loss %.4f acc %.2f%%", static_cast<long long>(r.epoch),
                static_cast<long long>(epochs), r.train_loss, 100 * r.train_acc);
  std::snprintf(tail, sizeof tail, "  lr %.2e  %.1f s", r.lr, r.seconds);
  return head +
         split("val", r.val_loss, r.val_acc, r.val_loss_precise, r.val_acc_precise, r.val_acc_ema, r.val_acc_tta) +
         split("test", r.test_loss, r.test_acc, r.test_loss_precise, r.test_acc_precise, r.test_acc_ema,
               r.test_acc_tta) +
         tail;
}

std::string bn_gap_note(const EpochRecord& r, double momentum) {
  const bool val = r.has_val();
  const double acc = val ? r.val_acc : r.test_acc, acc_precise = val ? r.val_acc_precise : r.test_acc_precise;
  if (std::isnan(acc) || std::isnan(acc_precise)) return "";
  const double gap = 100 * (acc_precise - acc);
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
  const std::array<unsigned char, 3> green{44, 160, 44}, red{214, 39, 40};
  // With --val-split the held-out images are what is evaluated; the test set only at the end. An
  // epoch --eval-every skipped has no values (gaps in the series).
  bool val = false;
  for (const EpochRecord& r : records) val = val || r.has_val();
  const char* name = val ? "VAL" : "TEST";
  Series train_loss{"TRAIN", blue, {}}, eval_loss{name, orange, {}}, precise_loss{cat(name, " PRECISE BN"), green, {}};
  Series train_acc{"TRAIN", blue, {}}, eval_acc{name, orange, {}}, precise_acc{cat(name, " PRECISE BN"), green, {}};
  Series ema_acc{cat(name, " EMA"), red, {}};
  bool precise = false, ema = false;  // drawn when any evaluation had them
  for (const EpochRecord& r : records) {
    train_loss.y.push_back(r.train_loss), train_acc.y.push_back(100 * r.train_acc);
    eval_loss.y.push_back(val ? r.val_loss : r.test_loss), eval_acc.y.push_back(100 * (val ? r.val_acc : r.test_acc));
    precise_loss.y.push_back(val ? r.val_loss_precise : r.test_loss_precise);
    precise_acc.y.push_back(100 * (val ? r.val_acc_precise : r.test_acc_precise));
    ema_acc.y.push_back(100 * (val ? r.val_acc_ema : r.test_acc_ema));
    precise = precise || !std::isnan(precise_acc.y.back());
    ema = ema || !std::isnan(ema_acc.y.back());
  }
  Panel loss{"LOSS", {train_loss, eval_loss}, true, 0}, acc{"ACCURACY %", {train_acc, eval_acc}, true, 100};
  if (precise && !records.empty()) loss.series.push_back(precise_loss), acc.series.push_back(precise_acc);
  if (ema && !records.empty()) acc.series.push_back(ema_acc);
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
