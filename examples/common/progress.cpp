#include "examples/common/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace mg::cli {

std::string format_duration(double seconds) {
  const long s = seconds < 0 ? 0 : static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

ProgressBar::ProgressBar() : tty_(isatty(STDERR_FILENO) == 1) {}

void ProgressBar::start(int64_t epoch, int64_t epochs, int64_t total, int64_t done) {
  epoch_ = epoch, epochs_ = epochs, total_ = total, first_ = done;
  // Report at each next tenth of the epoch not yet passed.
  next_report_ = (done * 10 / total + 1) * total / 10;
  start_ = std::chrono::steady_clock::now();
  last_draw_ = start_ - std::chrono::seconds(1);
}

void ProgressBar::update(int64_t done, double loss, double accuracy, int64_t images) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (tty_ ? (now - last_draw_ < std::chrono::milliseconds(200) && done < total_) : done < next_report_) return;
  last_draw_ = now;
  while (next_report_ <= done) next_report_ += std::max<int64_t>(1, total_ / 10);
  const double rate = elapsed > 0 ? static_cast<double>(images) / elapsed : 0;
  const double per_step = done > first_ ? elapsed / static_cast<double>(done - first_) : 0;
  const std::string eta = format_duration(per_step * static_cast<double>(total_ - done));
  if (tty_) {
    constexpr int kWidth = 20;
    std::string bar(kWidth, ' ');
    const int filled = static_cast<int>(kWidth * done / total_);
    for (int i = 0; i < filled; ++i) bar[static_cast<size_t>(i)] = '=';
    if (filled < kWidth) bar[static_cast<size_t>(filled)] = '>';
    std::fprintf(stderr, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld  loss %.4f  acc %.1f%%  %.1f img/s  ETA %s",
                 static_cast<long long>(epoch_), static_cast<long long>(epochs_), bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_), loss, 100 * accuracy, rate, eta.c_str());
    open_ = true;
  } else {
    std::fprintf(stderr, "epoch %lld/%lld  %lld/%lld (%d%%)  loss %.4f  acc %.1f%%  %.1f img/s  ETA %s\n",
                 static_cast<long long>(epoch_), static_cast<long long>(epochs_), static_cast<long long>(done),
                 static_cast<long long>(total_), static_cast<int>(100 * done / total_), loss, 100 * accuracy, rate,
                 eta.c_str());
  }
  std::fflush(stderr);
}

void ProgressBar::note(const std::string& text) {
  if (!tty_) return;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
  open_ = true;
}

void ProgressBar::finish() {
  if (tty_ && open_) std::fprintf(stderr, "\r\033[K");
  open_ = false;
  std::fflush(stderr);
}

}  // namespace mg::cli
