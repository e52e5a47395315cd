// The loss a run trains on (--loss), in one place for the training steps and the evals, so that
// metrics.csv reports the loss being minimised: softmax cross-entropy, or StableMax
// cross-entropy (Prieto et al. 2025). Accuracy is the argmax of the logits either way.
#pragma once

#include <string>

#include "autograd/ops.h"

namespace tg::grok {

enum class LossKind { Softmax, StableMax };

// "softmax" or "stablemax"; a tg::Error naming --loss otherwise.
LossKind parse_loss(const std::string& name);

// logits [N, C], int64 labels [N] -> the loss, reduced.
Tensor loss_of(LossKind kind, const Tensor& logits, const Tensor& labels,
               Reduction reduction = Reduction::Mean);

}  // namespace tg::grok
