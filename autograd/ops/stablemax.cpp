// StableMax cross-entropy (Prieto et al. 2025, "Grokking at the edge of numerical stability"):
//   s(x) = x + 1 for x >= 0, 1 / (1 - x) for x < 0;   StableMax(x)_i = s(x_i) / sum_j s(x_j)
//   loss[n] = -log StableMax(logits[n])_target[n] = log sum_j s(x_j) - log s(x_target)
// which is cross_entropy applied to log s(x), since logsumexp(log s) = log sum s. So the op is
// composed from existing ones and runs (forward and backward) on every device:
//   log s(x) = log(1 + pos * x) - log(1 - (1 - pos) * x),   pos = [x >= 0] (a constant mask)
// Both arguments of log are >= 1, so nothing overflows or divides by zero, and the mask being a
// constant gives d log s / dx = pos / (1 + x) + (1 - pos) / (1 - x): 1 at x = 0 from both sides
// (a relu-based form would give relu'(0) = 0 there).
#include "autograd/ops/common.h"
#include "core/factories.h"

namespace tg {

Tensor stablemax_cross_entropy(const Tensor& logits, const Tensor& targets, Reduction reduction) {
  check_floating("stablemax_cross_entropy", logits);
  check(logits.dim() == 2, "stablemax_cross_entropy: logits ", shape_str(logits.shape()),
        " must be [N, C]");
  const Tensor nonnegative = ge(logits, scalar(0, logits.dtype(), logits.device()));  // [N, C]
  const Tensor negative = 1.0 - nonnegative;
  const Tensor log_s = log(1.0 + nonnegative * logits) - log(1.0 - negative * logits);
  return cross_entropy(log_s, targets, reduction);  // checks the targets
}

}  // namespace tg
