// What train_cifar reports about a run: one record per epoch, kept in the checkpoint (so a resumed
// run's log and plot cover the whole run), written as out/log.csv, a summary line on stdout, the
// curves PNG, and the test confusion matrix as a table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "maxgrad/core/tensor.h"

namespace mg::cli {

struct EpochRecord {
  int64_t epoch = 0;                                                  // from 1
  int64_t step = 0;                                                   // optimiser steps done at the epoch's end
  double lr = 0;                                                      // of the epoch's last step
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;  // accuracies in [0, 1]
  double seconds = 0;  // wall time of the epoch (training and evaluation)
};

// The records as float64 tensors for the checkpoint: "history" (E, 7) holds everything but the
// times, which go to "history_seconds" (E): a resumed run must reproduce the first bitwise, and
// can never reproduce the second.
Tensor history_tensor(const std::vector<EpochRecord>& records);
Tensor history_seconds(const std::vector<EpochRecord>& records);
// The inverse; throws mg::Error for tensors of the wrong shape.
std::vector<EpochRecord> history_from(const Tensor& history, const Tensor& seconds);

// out/log.csv: "epoch,step,lr,train_loss,train_acc,test_loss,test_acc,seconds", rewritten whole
// (temporary file + rename) after each epoch, so it always matches the checkpoint's history.
void write_log_csv(const std::string& path, const std::vector<EpochRecord>& records);

// "epoch 3/12  train loss 1.2345 acc 56.78%  test loss 1.1000 acc 60.12%  lr 1.80e-03  612.3 s"
std::string summary_line(const EpochRecord& r, int64_t epochs);

// Loss and accuracy per epoch, train and test, side by side.
void write_curves(const std::string& path, const std::vector<EpochRecord>& records);

// counts[true * K + predicted]. Rows are true classes, columns predictions, plus each class's recall.
std::string confusion_table(const std::vector<int64_t>& counts, const std::vector<std::string>& classes);

}  // namespace mg::cli
