// Adam and AdamW: the step's checks and hyper-parameters; the update itself is each device's
// fused adam_step primitive (kernels/cpu/adam.cpp, kernels/cuda/adam.cu).
#include "optim/adam.h"

#include <cmath>
#include <utility>

#include "autograd/grad_mode.h"
#include "kernels/backend.h"

namespace tg::optim {

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
           double weight_decay)
    : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay, false) {}

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
           double weight_decay, bool decoupled)
    : Optimizer(std::move(params)),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay),
      decoupled_(decoupled) {
  set_lr(lr);
  check(beta1 >= 0 && beta1 < 1, name(), ": beta1 ", beta1, " must be in [0, 1)");
  check(beta2 >= 0 && beta2 < 1, name(), ": beta2 ", beta2, " must be in [0, 1)");
  check(std::isfinite(eps) && eps >= 0, name(), ": eps ", eps, " must be finite and >= 0");
  check(std::isfinite(weight_decay) && weight_decay >= 0, name(), ": weight decay ",
        weight_decay, " must be finite and >= 0");
  exp_avg_ = zeros_like_params();
  exp_avg_sq_ = zeros_like_params();
}

void Adam::step_with_norms(double* grad_norm, double* weight_norm) {
  // Check everything before writing anything, so that an error leaves no parameter half-updated.
  std::vector<Tensor> grads(params().size());
  for (size_t i = 0; i < params().size(); ++i) grads[i] = checked_grad(name(), i);
  NoGradGuard no_grad;  // the update is not part of the graph
  // One adam_step call per (device, dtype), in the order each first appears: usually one call.
  struct Group {
    Device device;
    DType dtype;
    std::vector<Tensor> params, grads, exp_avg, exp_avg_sq;
  };
  std::vector<Group> groups;
  for (size_t i = 0; i < params().size(); ++i) {
    if (!grads[i].defined()) continue;  // no gradient: skipped
    const Tensor& p = params()[i];
    auto it = groups.begin();
    while (it != groups.end() && (it->device != p.device() || it->dtype != p.dtype())) ++it;
    if (it == groups.end()) it = groups.insert(groups.end(), Group{p.device(), p.dtype(), {}, {}, {}, {}});
    it->params.push_back(p);
    it->grads.push_back(grads[i]);
    it->exp_avg.push_back(exp_avg_[i]);
    it->exp_avg_sq.push_back(exp_avg_sq_[i]);
  }
  AdamHyper hyper;
  hyper.lr = lr();
  hyper.beta1 = beta1_;
  hyper.beta2 = beta2_;
  hyper.eps = eps_;
  hyper.weight_decay = weight_decay_;
  hyper.decoupled = decoupled_;
  if (step_on_device()) {  // t and lr are computed on the device, in one adam_step call
    // Every call counts: with no gradients at all, a call with empty lists still counts it.
    if (groups.empty())
      groups.push_back(Group{params()[0].device(), params()[0].dtype(), {}, {}, {}, {}});
    hyper.device_steps = device_steps();
    hyper.lr_rule = device_schedule();
  } else {
    hyper.step = steps() + 1;
  }
  double grad_sq = 0, weight_sq = 0;
  for (const Group& g : groups) {
    double group_grad_sq = 0, group_weight_sq = 0;
    backend_for(g.device).adam_step(g.params, g.grads, g.exp_avg, g.exp_avg_sq, hyper,
                                    grad_norm ? &group_grad_sq : nullptr,
                                    weight_norm ? &group_weight_sq : nullptr);
    grad_sq += group_grad_sq;
    weight_sq += group_weight_sq;
    // In-place writes, as copy_ counts them: a graph that saved a parameter's old values (a
    // backward still to run) must not read the new ones.
    for (size_t i = 0; i < g.params.size(); ++i) {
      g.params[i].storage()->bump_version();
      g.exp_avg[i].storage()->bump_version();
      g.exp_avg_sq[i].storage()->bump_version();
    }
  }
  if (grad_norm) *grad_norm = std::sqrt(grad_sq);
  if (weight_norm) *weight_norm = std::sqrt(weight_sq);
  count_step();
}

std::vector<std::pair<std::string, Tensor>> Adam::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(2 * exp_avg_.size());
  for (size_t i = 0; i < exp_avg_.size(); ++i) {
    out.emplace_back("exp_avg." + std::to_string(i), exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + std::to_string(i), exp_avg_sq_[i]);
  }
  return out;
}

void Adam::load_state(const std::map<std::string, Tensor>& state, int64_t steps) {
  load_buffers(name(), this->state(), state, steps);
}

AdamW::AdamW(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
             double weight_decay)
    : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay, true) {}

}  // namespace tg::optim
