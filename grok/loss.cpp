// The training loss by kind.
#include "grok/loss.h"

#include "core/error.h"

namespace tg::grok {

LossKind parse_loss(const std::string& name) {
  if (name == "softmax") return LossKind::Softmax;
  if (name == "stablemax") return LossKind::StableMax;
  throw Error(cat("--loss: unknown value '", name, "' (expected one of: softmax, stablemax)"));
}

Tensor loss_of(LossKind kind, const Tensor& logits, const Tensor& labels, Reduction reduction) {
  if (kind == LossKind::StableMax) return stablemax_cross_entropy(logits, labels, reduction);
  return cross_entropy(logits, labels, reduction);
}

}  // namespace tg::grok
