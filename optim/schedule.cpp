// LrSchedule: linear warm-up, then constant or cosine decay (the formula: kernels/lr_rule.h).
#include "optim/schedule.h"

#include "core/error.h"

namespace tg::optim {

double LrSchedule::at(int64_t step) const {
  check(step >= 0, "lr schedule: step ", step, " is negative");
  check(warmup_steps >= 0, "lr schedule: warmup_steps ", warmup_steps, " is negative");
  check(kind == Kind::Constant || step < warmup_steps || total_steps > warmup_steps,
        "lr schedule: cosine needs total_steps (", total_steps, ") > warmup_steps (",
        warmup_steps, ")");
  return lr_at(rule(), step);
}

LrRule LrSchedule::rule() const {
  return {base_lr, warmup_steps, kind == Kind::Cosine, total_steps, min_lr};
}

LrSchedule::Kind parse_schedule(const std::string& text) {
  if (text == "constant") return LrSchedule::Kind::Constant;
  if (text == "cosine") return LrSchedule::Kind::Cosine;
  throw Error(cat("lr schedule: unknown schedule \"", text, "\" (expected constant or cosine)"));
}

}  // namespace tg::optim
