// Progress: a live bar on a terminal, plain lines otherwise.
#include "grok/progress.h"

#include <unistd.h>

#include <algorithm>
#include <string>

namespace tg::grok {

namespace {
std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, s / 60 % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  return buf;
}
}  // namespace

Progress::Progress(int64_t total_steps, std::FILE* out)
    : total_(total_steps), out_(out), tty_(out != nullptr && isatty(fileno(out)) != 0) {}

void Progress::update(const MetricsRow& row, double steps_per_s) {
  if (!out_) return;
  const double fraction = std::clamp(static_cast<double>(row.step) / total_, 0.0, 1.0);
  const double eta = steps_per_s > 0 ? (total_ - row.step) / steps_per_s : -1;
  char stats[256];
  std::snprintf(stats, sizeof stats,
                "step %lld/%lld  train %5.1f%%  test %5.1f%%  loss %.3g/%.3g  |w| %.2f  "
                "%.0f steps/s  ETA %s",
                static_cast<long long>(row.step), static_cast<long long>(total_),
                100 * row.train_acc, 100 * row.test_acc, row.train_loss, row.test_loss,
                row.weight_norm, steps_per_s, format_duration(eta).c_str());
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(fraction * kWidth);
    const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
    std::fprintf(out_, "\r\033[K[%s] %s", bar.c_str(), stats);
    open_line_ = true;
  } else {
    std::fprintf(out_, "%s\n", stats);
  }
  std::fflush(out_);
}

void Progress::finish() {
  if (!out_) return;
  if (open_line_) std::fprintf(out_, "\n");
  open_line_ = false;
  std::fflush(out_);
}

}  // namespace tg::grok
