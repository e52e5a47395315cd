// LrSchedule: the learning rate as a function of the number of completed optimiser steps.
//
//   warm-up:  lr = base_lr * min(step / warmup_steps, 1)   (Nanda's LambdaLR, so at(0) = 0)
//   then Constant: base_lr
//   or   Cosine:   min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2,
//                  progress = (step - warmup) / (total - warmup), for step in [warmup, total),
//                  and min_lr from total on (as Hugging Face's cosine schedule with warm-up).
// A training loop calls opt.set_lr(schedule.at(opt.steps())) before each opt.step(), or hands
// rule() to opt.keep_step_on_device() once.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/lr_rule.h"

namespace tg::optim {

struct LrSchedule {
  enum class Kind { Constant, Cosine };

  double base_lr;
  int64_t warmup_steps = 0;
  Kind kind = Kind::Constant;
  int64_t total_steps = 0;  // Cosine: the step at which lr reaches min_lr; must exceed warm-up
  double min_lr = 0;        // Cosine only

  double at(int64_t step) const;  // step = completed optimiser steps, from 0
  // The same schedule as plain numbers, for code that computes it on a device.
  LrRule rule() const;
};

// "constant" or "cosine" (as a command-line flag or config gives it).
LrSchedule::Kind parse_schedule(const std::string& text);

}  // namespace tg::optim
