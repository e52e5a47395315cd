// Progress: a live one-line bar on a terminal, plain periodic lines when output is a file or pipe.
#pragma once

#include <cstdint>
#include <cstdio>

#include "grok/metrics.h"

namespace tg::grok {

class Progress {
 public:
  // Writes to `out` (stderr by default; null for silence); a bar when `out` is a terminal.
  explicit Progress(int64_t total_steps, std::FILE* out = stderr);
  // Called at each eval with the latest metrics; steps_per_s measures training throughput.
  void update(const MetricsRow& row, double steps_per_s);
  void finish();  // ends the bar's line

 private:
  int64_t total_;
  std::FILE* out_;
  bool tty_;
  bool open_line_ = false;
};

}  // namespace tg::grok
