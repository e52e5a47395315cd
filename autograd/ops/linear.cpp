// linear: y = act(x @ W + b) (+ residual) as one op, through the backend's linear_forward: on
// the CPU the GEMM writes a fresh buffer and the bias add and the activation run over it in one
// pass (in place where backward can do without the pre-activation); on CUDA the GEMM applies
// them, and adds the residual, as it stores its output. Either way not three ops with three
// [N, out] temporaries. Backward, through the backend's linear_backward:
//   dpre = dy * act'(pre)    (with db = column sums of dpre, in the same pass)
//   dx = dpre @ W^T,  dW = x^T @ dpre,  dresidual = dy
// on the CPU as written; on CUDA, for ReLU, the two GEMMs read dy through the mask y (0 where
// y <= 0) and dpre is never written. When x feeds other ops too, what they sent back already is
// added to dx by the same GEMM (Node::adds_pending_gradients), not by an add of its own.
#include <utility>

#include "autograd/ops/common.h"

namespace tg {

Tensor linear(const Tensor& x, const Tensor& W, const Tensor& b, Activation act,
              const Tensor& residual) {
  check_same_device_and_dtype("linear", x, W);
  check_floating("linear", x);
  check(W.dim() == 2, "linear: W must be [in, out], got ", shape_str(W.shape()));
  const int64_t in = W.size(0), out_features = W.size(1);
  check(x.dim() >= 1 && x.shape().back() == in, "linear: x ", shape_str(x.shape()), " @ W ",
        shape_str(W.shape()), ": x must be [..., ", in, "]");
  if (b.defined()) {
    check_same_device_and_dtype("linear", x, b);
    check(b.dim() == 1 && b.size(0) == out_features, "linear: b must be [", out_features,
          "] for W ", shape_str(W.shape()), ", got ", shape_str(b.shape()));
  }
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  if (residual.defined()) {
    check_same_device_and_dtype("linear", x, residual);
    check(residual.shape() == out_shape, "linear: residual ", shape_str(residual.shape()),
          " must have the output's shape ", shape_str(out_shape));
  }
  Backend& backend = backend_for(x.device());
  // Counted, not inferred with -1: a reshape cannot infer a size next to an empty axis.
  const int64_t n_rows = numel(Shape(x.shape().begin(), x.shape().end() - 1));
  const Tensor rows = x.detach().reshape({n_rows, in});
  const bool grad = needs_grad({&x, &W, &b, &residual});
  // Relu's derivative reads off its output, unless a residual was added to it; Gelu's and
  // Square's need the pre-activation.
  const bool keep_pre = grad && (act == Activation::Gelu || act == Activation::Square ||
                                 (act == Activation::Relu && residual.defined()));
  Tensor pre;
  Tensor y = backend.linear_forward(rows, W.detach(), b.defined() ? b.detach() : Tensor(), act,
                                    residual.defined()
                                        ? residual.detach().reshape({n_rows, out_features})
                                        : Tensor(),
                                    keep_pre ? &pre : nullptr);
  y = y.reshape(out_shape);
  if (!grad) return y;
  // Backward takes the gradient x's other consumers sent already (a residual block's x + f(x):
  // the skip's) and adds it in the dx GEMM, as it stores dx.
  return record_adding(
      y, "LinearBackward",
      [saved_x = W.requires_grad() ? save(rows) : Tensor(),
       saved_w = x.requires_grad() ? save(W) : Tensor(),
       saved = act == Activation::Identity ? Tensor() : save(keep_pre ? pre : y), act,
       x_shape = x.shape(), has_b = b.defined() && b.requires_grad(), in, n_rows,
       out_features](const Tensor& g, std::vector<Tensor>& pending) -> std::vector<Tensor> {
        const Tensor dy = g.reshape({n_rows, out_features}).contiguous();
        const Tensor dx_pending =
            saved_w.defined() && pending[0].defined()
                ? std::exchange(pending[0], Tensor()).reshape({n_rows, in})
                : Tensor();
        Tensor dx, dW, db;  // dx needs W, dW needs x: the backend computes what it is given
        backend_for(g.device())
            .linear_backward(dy, saved_x, saved_w,
                             saved.defined() ? saved.reshape(dy.shape()) : Tensor(), act, has_b,
                             dx_pending, Tensor(), dx, dW, db);
        return {dx.defined() ? dx.reshape(x_shape) : Tensor(), dW, db, g};
      },
      {&x, &W, &b, &residual});
}

}  // namespace tg
