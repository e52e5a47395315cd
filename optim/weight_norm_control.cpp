// Scaling the weights in place: by a factor, or onto a sphere of a given global norm.
#include "optim/weight_norm_control.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "optim/clip.h"

namespace tg::optim {

void scale_weights(const std::vector<Tensor>& params, double factor) {
  check(std::isfinite(factor), "scale_weights: factor ", factor, " must be finite");
  NoGradGuard no_grad;
  for (const Tensor& p : params) Tensor(p).copy_(scale(p.detach(), factor));
}

void constrain_weight_norm(const std::vector<Tensor>& params, double norm) {
  check(std::isfinite(norm) && norm >= 0, "constrain_weight_norm: norm ", norm,
        " must be finite and >= 0");
  const double current = global_norm(params);
  // All zero: no direction. Not finite: a blown-up step, which the trainer's loss check stops.
  if (current == 0 || !std::isfinite(current)) return;
  scale_weights(params, norm / current);
}

}  // namespace tg::optim
