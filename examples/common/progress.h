// A per-epoch progress bar on stderr. On a terminal it redraws one line in place (\r), at most a
// few times a second; into a file or pipe (CI logs) it writes a plain line every ~10% of the epoch
// instead, since \r-redraws would pile up there as thousands of lines.
//
//   epoch 3/12 [=========>          ] 120/390  loss 1.8765  acc 34.2%  31.0 img/s  ETA 8:42
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace mg::cli {

class ProgressBar {
 public:
  ProgressBar();  // detects whether stderr is a terminal
  // An epoch of `total` steps whose first `done` were already done (a resumed run).
  void start(int64_t epoch, int64_t epochs, int64_t total, int64_t done);
  // After each step: steps done in the epoch, running mean loss and accuracy, images this session.
  void update(int64_t done, double loss, double accuracy, int64_t images);
  void note(const std::string& text);  // a transient status ("evaluating") shown on a terminal only
  void finish();                       // ends the line on a terminal; nothing otherwise

 private:
  bool tty_;
  int64_t epoch_ = 0, epochs_ = 0, total_ = 0, first_ = 0, next_report_ = 0;
  bool open_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "8:42", "1:02:03"
std::string format_duration(double seconds);

}  // namespace mg::cli
