// Sharpness (seed survey §3.5; Foret et al. 2021): how much the training loss can rise within
// a ball of radius ρ around the weights,
//   S(θ) = max_{‖ε‖ ≤ ρ} L_train(θ + ε) − L_train(θ),
// estimated by projected gradient ascent on ε from ε = 0: the first step is SAM's
// ε = ρ g/‖g‖, each later one ε ← Proj_ρ(ε + ρ g/‖g‖) with g the gradient at θ + ε. The
// estimate is the largest loss rise seen over the iterates (ε = 0 included, so S ≥ 0), a lower
// bound of the true maximum. The radius is absolute here; the analysis picks it per snapshot
// (by default a fixed fraction of ‖θ‖, grok/analysis/run_analysis.h).
#pragma once

#include "core/tensor.h"
#include "grok/loss.h"
#include "nn/model.h"

namespace tg::grok::analysis {

constexpr int kSharpnessSteps = 5;

struct Sharpness {
  double value = 0;           // S(θ): perturbed_loss − loss
  double loss = 0;            // L_train(θ)
  double perturbed_loss = 0;  // the largest L_train(θ + ε) found
  double rho = 0;             // the radius used
};

// Runs on the model's device, in its dtype, over the whole of tokens/labels at once, in eval
// mode (no dropout). Afterwards the weights are exactly as before (restored from copies), and so
// are the gradients they held and the train/eval mode. rho >= 0; steps >= 1.
Sharpness sharpness(nn::Model& model, const Tensor& tokens, const Tensor& labels, double rho,
                    int steps = kSharpnessSteps, LossKind loss = LossKind::Softmax);

}  // namespace tg::grok::analysis
