// LrRule: the learning-rate schedule as plain numbers and one function, lr_at, that host code
// (optim::LrSchedule::at) and a CUDA kernel (adam_step with its step count on the device) both
// call, so that a step recorded once in a CUDA graph follows the same schedule when replayed.
//
//   warm-up:  lr = base_lr * step / warmup_steps            for step < warmup_steps
//   then constant: base_lr
//   or   cosine:   min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2,
//                  progress = min(1, (step - warmup_steps) / (total_steps - warmup_steps))
// step counts completed optimiser steps, from 0. The caller has checked the rule (step >= 0,
// warmup_steps >= 0, total_steps > warmup_steps for cosine): a kernel cannot throw.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace tg {

struct LrRule {
  double base_lr = 0;
  int64_t warmup_steps = 0;
  bool cosine = false;
  int64_t total_steps = 0;
  double min_lr = 0;
};

TG_HOST_DEVICE inline double lr_at(const LrRule& r, int64_t step) {
  if (step < r.warmup_steps)
    return r.base_lr * (static_cast<double>(step) / static_cast<double>(r.warmup_steps));
  if (!r.cosine) return r.base_lr;
  double progress = static_cast<double>(step - r.warmup_steps) /
                    static_cast<double>(r.total_steps - r.warmup_steps);
  if (progress > 1.0) progress = 1.0;
  constexpr double kPi = 3.14159265358979323846;
  return r.min_lr + (r.base_lr - r.min_lr) * 0.5 * (1 + ::cos(kPi * progress));
}

}  // namespace tg
