// Sharpness by projected gradient ascent in a ball around the weights.
#include "grok/analysis/sharpness.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/factories.h"
#include "optim/clip.h"

namespace tg::grok::analysis {

Sharpness sharpness(nn::Model& model, const Tensor& tokens, const Tensor& labels, double rho,
                    int steps, LossKind loss) {
  check(rho >= 0 && std::isfinite(rho), "sharpness: rho must be >= 0, got ", rho);
  check(steps >= 1, "sharpness: steps must be at least 1, got ", steps);
  std::vector<Tensor> params = model.parameters();  // handles: copy_ writes the weights
  const bool was_training = model.is_training();
  model.eval();
  std::vector<Tensor> weights;                     // θ, to perturb from and restore
  std::vector<std::shared_ptr<TensorImpl>> grads;  // whatever the caller's gradients were
  std::vector<Tensor> epsilon;
  {
    NoGradGuard no_grad;
    for (const Tensor& p : params) {
      weights.push_back(p.clone());
      grads.push_back(p.impl()->grad);
      epsilon.push_back(zeros_like(p));
    }
  }
  // L(θ + ε), and its gradient into the parameters' .grad when asked.
  auto loss_at = [&](bool with_gradient) {
    model.zero_grad();
    if (!with_gradient) {
      NoGradGuard no_grad;
      return loss_of(loss, model.forward(tokens), labels).item();
    }
    const Tensor value = loss_of(loss, model.forward(tokens), labels);
    value.backward();
    return value.item();
  };

  Sharpness out;
  out.rho = rho;
  out.loss = loss_at(rho > 0);
  out.perturbed_loss = out.loss;
  for (int step = 0; step < steps && rho > 0; ++step) {
    const double grad_norm = optim::global_grad_norm(params);
    if (!(grad_norm > 0) || !std::isfinite(grad_norm)) break;  // flat, or nothing to climb
    {
      NoGradGuard no_grad;
      for (size_t i = 0; i < params.size(); ++i) {
        const Tensor g = params[i].grad();
        if (g.defined()) epsilon[i].copy_(epsilon[i] + g * (rho / grad_norm));
      }
      const double norm = optim::global_norm(epsilon);
      if (norm > rho)
        for (Tensor& e : epsilon) e.copy_(e * (rho / norm));
      for (size_t i = 0; i < params.size(); ++i) params[i].copy_(weights[i] + epsilon[i]);
    }
    out.perturbed_loss = std::max(out.perturbed_loss, loss_at(step + 1 < steps));
  }
  out.value = out.perturbed_loss - out.loss;

  NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].copy_(weights[i]);
    params[i].impl()->grad = grads[i];
  }
  model.train(was_training);
  return out;
}

}  // namespace tg::grok::analysis
