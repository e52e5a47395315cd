// The training variants of a run (REFERENCE §2), applied around the optimiser step:
//   backward -> filter_gradients() -> clip -> before_step() -> optimizer step -> after_step()
// filter_gradients: Grokfast (--grokfast) then ⊥Grad (--orthogonal-grad) rewrite the gradients;
// before_step: weight decay toward the initial weights (--wd-target init);
// after_step: Omnigrok's weight-norm constraint (--weight-norm-constraint).
// Their state (Grokfast's memory, theta_0, the norm to hold) goes into the checkpoint beside the
// optimiser's buffers, so a resumed run continues exactly. --init-scale and --loss act elsewhere
// (on the fresh weights, and in the loss: grok/loss.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "grok/config.h"
#include "optim/grokfast.h"

namespace tg::grok {

class TrainVariants {
 public:
  // params: the model's parameters as training starts (fresh weights after --init-scale, or
  // --init's), on the run's device: theta_0 and the norm to hold are taken from them now. A
  // resumed run replaces them with the checkpoint's by load_state().
  TrainVariants(const TrainConfig& config, std::vector<Tensor> params);

  // After backward, before clipping: Grokfast's filter, then ⊥Grad (last, so that the gradient
  // the optimiser receives is orthogonal to the weights, as ⊥Grad promises).
  void filter_gradients();
  // Just before the optimiser's step at learning rate lr: the decay toward theta_0.
  void before_step(double lr);
  // Just after the step: the weights back onto the sphere of the starting norm.
  void after_step();

  // "grokfast.*" (optim/grokfast.h), "wd_target.<i>" (theta_0 per parameter) and
  // "weight_norm_constraint.norm" (float64 []), each only when its variant is on. Names no
  // optimiser uses, so they share optimizer.safetensors.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Takes this object's entries out of `checkpoint_state` (all of a checkpoint's optimiser
  // tensors) and loads them, leaving the optimiser's own. A missing, unexpected or misshapen
  // entry is a tg::Error naming it.
  void load_state(std::map<std::string, Tensor>& checkpoint_state);

 private:
  std::vector<Tensor> params_;
  std::unique_ptr<optim::GrokfastFilter> grokfast_;  // null: --grokfast none
  bool orthogonal_grad_;
  // --wd-target init: theta_0, and the decay applied toward it (the optimiser's own is 0).
  std::vector<Tensor> decay_targets_;
  double weight_decay_ = 0;
  bool decoupled_decay_ = true;
  double norm_to_hold_ = -1;  // < 0: no weight-norm constraint
};

// The weight decay the optimiser itself applies: --wd, or 0 when TrainVariants decays toward
// theta_0 instead.
double optimizer_weight_decay(const TrainConfig& config);

}  // namespace tg::grok
