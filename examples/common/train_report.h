// What train_cifar reports about a run: one record per epoch, kept in the checkpoint (so a resumed
// run's log and plot cover the whole run), written as out/log.csv, a summary line on stdout, the
// curves PNG, and the test confusion matrix as a table.
#pragma once
#include <cmath>
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
  // The same test set with BatchNorm statistics recomputed for the epoch's final weights
  // (--precise-bn); NaN when off.
  double test_loss_precise = std::nan(""), test_acc_precise = std::nan("");
  // --val-split: the held-out training images, every epoch (NaN without a split). The test fields
  // are then NaN but in the last epoch, whose end evaluates the test set once.
  double val_loss = std::nan(""), val_acc = std::nan(""), val_loss_precise = std::nan(""),
         val_acc_precise = std::nan("");
  // --model-ema-decay: the averaged weights (with precise BatchNorm statistics of their own when
  // --precise-bn is on); --tta flip: the final model (averaged weights if any, precise statistics
  // if on) on each image and its mirror. NaN when off.
  double test_acc_ema = std::nan(""), val_acc_ema = std::nan(""), test_acc_tta = std::nan(""),
         val_acc_tta = std::nan("");
  bool has_precise() const { return !std::isnan(test_acc_precise) || !std::isnan(val_acc_precise); }
  bool has_val() const { return !std::isnan(val_acc); }
  bool has_test() const { return !std::isnan(test_acc); }
  // The accuracy the recipe reports for the epoch's model on the test set (NaN if not evaluated):
  // with test-time augmentation if on, else the averaged weights if kept, else precise statistics
  // if on, else the running ones.
  double final_test_acc() const;
};

// The records as float64 tensors for the checkpoint: "history" (E, 17) holds everything but the
// times, which go to "history_seconds" (E): a resumed run must reproduce the first bitwise, and
// can never reproduce the second.
Tensor history_tensor(const std::vector<EpochRecord>& records);
Tensor history_seconds(const std::vector<EpochRecord>& records);
// The inverse (a history of 7 or 9 columns, from before --precise-bn or --val-split, reads as
// those off); throws
// mg::Error for tensors of the wrong shape.
std::vector<EpochRecord> history_from(const Tensor& history, const Tensor& seconds);

// out/log.csv: "epoch,step,lr,train_loss,train_acc,test_loss,test_acc,seconds,test_loss_precise_bn,
// test_acc_precise_bn,val_loss,val_acc,val_loss_precise_bn,val_acc_precise_bn,test_acc_ema,
// val_acc_ema,test_acc_tta,val_acc_tta" (a value not evaluated is empty), rewritten whole
// (temporary file + rename) after each epoch, so it always matches the checkpoint's history.
void write_log_csv(const std::string& path, const std::vector<EpochRecord>& records);

// "epoch 3/12  train loss 1.2345 acc 56.78%  test loss 1.1000 acc 60.12% (precise BN 1.0500 63.40%)
//  lr 1.80e-03  612.3 s"
std::string summary_line(const EpochRecord& r, int64_t epochs);

// One sentence when the two test accuracies differ by more than 3 points, saying why; "" otherwise.
// momentum: the BatchNorms' (PyTorch convention); a value above 0.5 follows only the last batches.
std::string bn_gap_note(const EpochRecord& r, double momentum);

// Loss and accuracy per epoch, train and test, side by side.
void write_curves(const std::string& path, const std::vector<EpochRecord>& records);

// counts[true * K + predicted]. Rows are true classes, columns predictions, plus each class's recall.
std::string confusion_table(const std::vector<int64_t>& counts, const std::vector<std::string>& classes);

}  // namespace mg::cli
