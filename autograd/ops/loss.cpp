// Cross-entropy from logits and integer targets, fused and numerically stable:
//   loss[n] = logsumexp(logits[n]) - logits[n, target[n]]
//   dlogits[n] = (softmax(logits[n]) - onehot(target[n])) * dloss[n]
// The forward keeps the per-row log-sum-exp of the max-shifted logits, so backward rebuilds the
// softmax from the logits without summing the exponentials again.
#include "autograd/ops/common.h"

namespace tg {

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, Reduction reduction) {
  check_floating("cross_entropy", logits);
  check(logits.dim() == 2, "cross_entropy: logits ", shape_str(logits.shape()),
        " must be [N, C]");
  check(targets.dtype() == DType::Int64, "cross_entropy: targets must be int64, got ",
        dtype_name(targets.dtype()), " of shape ", shape_str(targets.shape()));
  check(targets.dim() == 1 && targets.size(0) == logits.size(0), "cross_entropy: logits ",
        shape_str(logits.shape()), " need targets [", logits.size(0), "], got ",
        shape_str(targets.shape()));
  check(logits.device() == targets.device(), "cross_entropy: logits on ", logits.device().str(),
        ", targets on ", targets.device().str());
  check(logits.size(1) > 0, "cross_entropy: logits ", shape_str(logits.shape()), " have no classes");

  Tensor rows, shifted_logsumexp;
  backend_for(logits.device()).cross_entropy(logits, targets, rows, shifted_logsumexp);
  Tensor row_losses = rows;
  if (needs_grad({&logits})) {
    row_losses = record(rows, "CrossEntropyBackward",
                        [logits = save(logits), targets = save(targets),
                         shifted_logsumexp = save(shifted_logsumexp)](
                            const Tensor& g) -> std::vector<Tensor> {
                          return {backend_for(g.device()).cross_entropy_backward(
                              logits, targets, shifted_logsumexp, g)};
                        },
                        {&logits});
  }
  // The reduction is an ordinary (differentiable) sum or mean on top of the per-row losses.
  switch (reduction) {
    case Reduction::None: return row_losses;
    case Reduction::Sum: return sum(row_losses);
    case Reduction::Mean:
      check(logits.size(0) > 0, "cross_entropy: mean over an empty batch");
      return mean(row_losses);
  }
  return row_losses;
}

}  // namespace tg
