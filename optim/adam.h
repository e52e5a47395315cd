// Adam and AdamW, exactly PyTorch's formulas (torch.optim.Adam / AdamW, amsgrad off). At step t
// (t = steps() + 1), for every parameter p with gradient g:
//   Adam:  g += weight_decay * p                      (L2: decay enters the moments)
//   AdamW: p *= 1 - lr * weight_decay                 (decoupled: decay bypasses the moments)
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// The update is the backend's fused adam_step (kernels/backend.h) on every device: on the CPU one
// SIMD pass over each parameter's raw data, on CUDA one launch for all of a step's parameters.
// Both take every element through the same operations in the same order; they may differ in
// the last bit where the CPU's compiler fuses a multiply-add.
//
// t is the optimiser's step count, shared by all parameters; PyTorch counts per parameter, which
// differs only for a parameter that was skipped (no gradient) on some earlier step.
#pragma once

#include "optim/optimizer.h"

namespace tg::optim {

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0);

  void step() override { step_with_norms(nullptr, nullptr); }
  // step(), also giving (where not null) the global L2 norm of the gradients it applied, as read
  // (before L2 weight decay), and of the parameters it updated, after the update: taken in the
  // update's own pass, so the metrics cost no extra pass over memory. Both cover only the
  // parameters that had a gradient (those the step updated); 0 when there were none.
  void step_with_norms(double* grad_norm, double* weight_norm);
  // "exp_avg.<i>" (m) and "exp_avg_sq.<i>" (v) for each parameter i, in that order.
  std::vector<std::pair<std::string, Tensor>> state() const override;
  void load_state(const std::map<std::string, Tensor>& state, int64_t steps) override;
  void keep_step_on_device(const LrRule& schedule) override {
    move_step_count_to_device(schedule);
  }

  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool decoupled_weight_decay() const { return decoupled_; }

 protected:
  // For AdamW: `decoupled` selects p *= 1 - lr * wd instead of g += wd * p.
  Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
       double weight_decay, bool decoupled);

 private:
  const char* name() const { return decoupled_ ? "adamw" : "adam"; }

  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;  // m and v, one per parameter
};

// Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's defaults.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 1e-2);
};

}  // namespace tg::optim
