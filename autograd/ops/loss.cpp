// Cross-entropy from logits and integer targets, fused and numerically stable:
//   loss[n] = logsumexp(logits[n]) - logits[n, target[n]]
//   dlogits[n] = (softmax(logits[n]) - onehot(target[n])) * dloss[n]
// The forward keeps the per-row log-sum-exp of the max-shifted logits, so backward rebuilds the
// softmax from the logits without summing the exponentials again. Under a mean or sum, when
// the logits need a gradient, the reduced loss and dlogits come from one call
// (cross_entropy_with_grad: one kernel on a GPU) and backward only scales dlogits by the upstream
// gradient (for backward()'s seed 1, not even that).
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

  Backend& backend = backend_for(logits.device());
  if (reduction != Reduction::None && needs_grad({&logits})) {
    // The gradient of each row's loss is known now (1 / N for a mean, 1 for a sum): compute it
    // in the forward pass, in one sweep over the logits, and only scale it in backward.
    check(reduction == Reduction::Sum || logits.size(0) > 0,
          "cross_entropy: mean over an empty batch");
    // The loss carries no graph of its own: the node below stands for the whole reduction.
    Tensor loss, dlogits;
    backend.cross_entropy_with_grad(
        logits, targets, reduction == Reduction::Mean ? ReduceOp::Mean : ReduceOp::Sum, loss,
        dlogits);
    // loss.backward()'s seed 1 takes dlogits as they are (Node::apply_to_unit_seed): no
    // tensor of ones, no multiply.
    return record(
        loss, "CrossEntropyBackward",
        [dlogits = save(dlogits)](const Tensor& g) -> std::vector<Tensor> { return {dlogits * g}; },
        [dlogits = save(dlogits)]() -> std::vector<Tensor> { return {dlogits}; }, {&logits});
  }

  Tensor rows, shifted_logsumexp;
  backend.cross_entropy(logits, targets, rows, shifted_logsumexp);
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
