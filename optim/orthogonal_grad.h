// ⊥Grad (Prieto et al. 2025, "Grokking at the edge of numerical stability"): keep only the part
// of each parameter's gradient orthogonal to the parameter, at the gradient's own length, so
// that a step cannot simply scale the weights up (the "naive loss minimisation" direction that
// drives softmax collapse). Per parameter tensor w with gradient g:
//   g_perp = g - (w.g / w.w) w,   g <- g_perp * (||g|| / ||g_perp||)
// then the optimiser steps as usual (with AdamW, this is the paper's ⊥AdamW).
#pragma once

#include <vector>

#include "core/tensor.h"

namespace tg::optim {

// Rewrites, in place, the gradient of every parameter that has one. A parameter with w.w == 0
// keeps its gradient (no direction to remove); a gradient parallel to w (g_perp == 0) becomes 0,
// since no orthogonal direction of length ||g|| exists. The dot products are taken in double.
void orthogonalize_gradients(const std::vector<Tensor>& params);

}  // namespace tg::optim
