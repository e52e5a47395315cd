// Weight decay toward reference weights theta_0 (the run's initial weights, --wd-target init)
// instead of toward zero: the decay then shrinks the distance travelled from the start rather
// than the weights themselves, which separates "small weights" from "weights near the init" as
// explanations of grokking. Two forms, matching where each optimiser puts its decay:
//   decoupled (AdamW):     theta <- theta - lr * wd * (theta - theta_0)   before the Adam update
//   L2 (Adam, SGD):        g <- g + wd * (theta - theta_0)                before the update
// The optimiser itself then runs with weight decay 0. Both act only on parameters that have a
// gradient, as the optimisers' own decay does.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace tg::optim {

// theta <- theta - factor * (theta - theta_0) for each params[i] with a gradient, theta_0 =
// targets[i]; factor = lr * wd. In place, outside the graph.
void decay_toward(const std::vector<Tensor>& params, const std::vector<Tensor>& targets,
                  double factor);

// g <- g + wd * (theta - theta_0) for each params[i] with a gradient, in place.
void add_decay_toward_to_grad(const std::vector<Tensor>& params,
                              const std::vector<Tensor>& targets, double wd);

}  // namespace tg::optim
