// LrSchedule: linear warm-up, then constant or cosine decay.
#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace tg::optim {

double LrSchedule::at(int64_t step) const {
  check(step >= 0, "lr schedule: step ", step, " is negative");
  check(warmup_steps >= 0, "lr schedule: warmup_steps ", warmup_steps, " is negative");
  if (step < warmup_steps)
    return base_lr * (static_cast<double>(step) / static_cast<double>(warmup_steps));
  if (kind == Kind::Constant) return base_lr;
  check(total_steps > warmup_steps, "lr schedule: cosine needs total_steps (", total_steps,
        ") > warmup_steps (", warmup_steps, ")");
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) /
                                            static_cast<double>(total_steps - warmup_steps));
  return min_lr + (base_lr - min_lr) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
}

LrSchedule::Kind parse_schedule(const std::string& text) {
  if (text == "constant") return LrSchedule::Kind::Constant;
  if (text == "cosine") return LrSchedule::Kind::Cosine;
  throw Error(cat("lr schedule: unknown schedule \"", text, "\" (expected constant or cosine)"));
}

}  // namespace tg::optim
