// RunEvaluator: a run's evals, the model's loss and accuracy on its training and test sets and its
// weight norm: eagerly, or (with the step recorded) replayed as one recorded graph whose sums are
// read at once.
#pragma once

#include <memory>
#include <vector>

#include "grok/loss.h"
#include "grok/metrics.h"
#include "kernels/backend.h"
#include "nn/model.h"

namespace tg::grok {

class RunEvaluator {
 public:
  // The sets' tokens and labels live on the run's device. `record`: the run's step is recorded
  // (grok/device_step.h), and so are the evals after the first.
  RunEvaluator(nn::Model& model, LossKind loss, Tensor train_tokens, Tensor train_labels,
               Tensor test_tokens, Tensor test_labels, bool record);

  struct Measured {
    LossAccuracy train, test;
    double weight_norm = 0;  // optim::global_norm of the model's parameters
  };
  // Both sets and the weight norm, as an eval measures them (their values do not depend on how).
  Measured measure();

  // The training set's loss alone, measured eagerly: a check, not an eval.
  double train_loss();

 private:
  nn::Model& model_;
  LossKind loss_;
  Tensor train_tokens_, train_labels_, test_tokens_, test_labels_;
  std::vector<Tensor> params_;  // the model's, in its order (the weight norm's order)
  bool record_;
  bool evaluated_eagerly_ = false;
  std::unique_ptr<CapturedWork> graph_;
  Tensor sums_;  // float64 [2, 2]: (loss sum, correct) of the train set, then the test set
};

}  // namespace tg::grok
