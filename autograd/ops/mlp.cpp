// mlp: a position-wise MLP, act(x @ W_in + b_in) @ W_out + b_out (+ residual), as one op.
//
// Composed of two linear ops it is the same arithmetic, but a ReLU's backward then runs inside
// the first layer's: its GEMMs read dy through the ReLU's mask (or a pass writes the masked dy).
// As one op, the hidden layer h = relu(...) has no consumer but the second layer, so every
// gradient of h is in hand when the second layer's input-gradient GEMM stores it, and that GEMM
// applies the mask as it stores (Backend::linear_backward's dx_relu_mask, cuBLASLt's DRELU
// epilogue); the first layer then takes the masked gradient as its dpre, as an Identity layer,
// with plain GEMMs. (Only on a backend whose GEMMs do that, Backend::masks_dx_as_stored: on the
// CPU a mask pass of its own would cost more than the first layer's activation_backward, which
// masks and sums the bias gradient in one pass, so there the op runs the composition's calls.)
//   forward   h = act(x @ W_in + b_in),   out = h @ W_out + b_out (+ residual)
//   backward  dW_out = h^T @ dout,  db_out = column sums of dout,
//             dpre = (dout @ W_out^T) * relu'(h)              one GEMM, the mask as it stores
//             dW_in = x^T @ dpre,  db_in = column sums of dpre,
//             dx = dpre @ W_in^T (+ x's pending gradients, + dout when x is the residual)
// The values are the composition's (tests/test_mlp_op.cpp compares the two on the CPU,
// test_cuda_linear_backward.cpp on CUDA at 16-byte rows; both bit for bit): the mask is the
// same select, and when x is the residual itself (a block's h + mlp(h)), dout joins x's pending
// gradient as autograd would have added it, before the dx GEMM adds the sum. Other activations,
// whose derivatives are not masks, take the first layer's linear_backward with act as before.
#include <tuple>
#include <utility>

#include "autograd/ops/common.h"

namespace tg {

Tensor mlp(const Tensor& x, const Tensor& W_in, const Tensor& b_in, Activation act,
           const Tensor& W_out, const Tensor& b_out, const Tensor& residual) {
  check_same_device_and_dtype("mlp", x, W_in);
  check_same_device_and_dtype("mlp", x, W_out);
  check_floating("mlp", x);
  check(W_in.dim() == 2 && W_out.dim() == 2 && W_out.size(0) == W_in.size(1),
        "mlp: W_in ", shape_str(W_in.shape()), " and W_out ", shape_str(W_out.shape()),
        " must be [in, hidden] and [hidden, out]");
  const int64_t in = W_in.size(0), hidden = W_in.size(1), out_features = W_out.size(1);
  check(x.dim() >= 1 && x.shape().back() == in, "mlp: x ", shape_str(x.shape()), " must be [..., ",
        in, "] for W_in ", shape_str(W_in.shape()));
  for (const auto& [b, name, width] : {std::tuple{&b_in, "b_in", hidden},
                                       std::tuple{&b_out, "b_out", out_features}}) {
    if (!b->defined()) continue;
    check_same_device_and_dtype("mlp", x, *b);
    check(b->dim() == 1 && b->size(0) == width, "mlp: ", name, " must be [", width, "], got ",
          shape_str(b->shape()));
  }
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  if (residual.defined()) {
    check_same_device_and_dtype("mlp", x, residual);
    check(residual.shape() == out_shape, "mlp: residual ", shape_str(residual.shape()),
          " must have the output's shape ", shape_str(out_shape));
  }
  Backend& backend = backend_for(x.device());
  const int64_t n_rows = numel(Shape(x.shape().begin(), x.shape().end() - 1));
  const Tensor rows = x.detach().reshape({n_rows, in});
  const bool grad = needs_grad({&x, &W_in, &b_in, &W_out, &b_out, &residual});
  // A ReLU's derivative reads off h; Gelu's and Square's need the pre-activation.
  const bool keep_pre = grad && (act == Activation::Gelu || act == Activation::Square);
  Tensor pre;
  const Tensor h = backend.linear_forward(rows, W_in.detach(),
                                          b_in.defined() ? b_in.detach() : Tensor(), act,
                                          Tensor(), keep_pre ? &pre : nullptr);
  const Tensor y = backend.linear_forward(
      h, W_out.detach(), b_out.defined() ? b_out.detach() : Tensor(), Activation::Identity,
      residual.defined() ? residual.detach().reshape({n_rows, out_features}) : Tensor(), nullptr);
  if (!grad) return y.reshape(out_shape);

  const bool residual_is_x = residual.defined() && residual.impl_ptr() == x.impl_ptr();
  const bool need_first = x.requires_grad() || W_in.requires_grad() ||
                          (b_in.defined() && b_in.requires_grad());
  return record_adding(
      y.reshape(out_shape), "MLPBackward",
      [saved_x = W_in.requires_grad() ? save(rows) : Tensor(),
       saved_w_in = x.requires_grad() ? save(W_in) : Tensor(),
       saved_w_out = need_first ? save(W_out) : Tensor(),
       saved_pre = keep_pre ? pre : Tensor(),
       h = W_out.requires_grad() || act == Activation::Relu ? h : Tensor(), act,
       x_shape = x.shape(), n_rows, in,
       out_features, has_b_in = b_in.defined() && b_in.requires_grad(),
       has_b_out = b_out.defined() && b_out.requires_grad(),
       need_w_out = W_out.requires_grad(), need_first, residual_is_x,
       need_residual = residual.defined() && residual.requires_grad()](
          const Tensor& g, std::vector<Tensor>& pending) -> std::vector<Tensor> {
        Backend& backend = backend_for(g.device());
        const Tensor dout = g.reshape({n_rows, out_features}).contiguous();
        // The ReLU's mask as the second layer's dx is stored, or in the first layer's backward.
        const bool mask_in_dx =
            act == Activation::Relu && g.dtype() == DType::Float32 && backend.masks_dx_as_stored();
        Tensor dh, dW_out, db_out;
        backend.linear_backward(dout, need_w_out ? h : Tensor(), saved_w_out, Tensor(),
                                Activation::Identity, has_b_out, Tensor(),
                                need_first && mask_in_dx ? h : Tensor(), dh, dW_out, db_out);
        Tensor dx, dW_in, db_in;
        if (need_first) {
          // x's gradient from the skip (x is the residual), after what x's other consumers sent,
          // in the order autograd would have added them; the dx GEMM adds it as it stores.
          Tensor dx_pending;
          if (saved_w_in.defined()) {
            Tensor others = std::exchange(pending[0], Tensor());
            if (residual_is_x) others = others.defined() ? others + g : g;
            if (others.defined()) dx_pending = others.reshape({n_rows, in});
          }
          // What act' reads: h for a ReLU, the pre-activation for Gelu and Square.
          const Tensor saved = act == Activation::Relu ? h : saved_pre;
          backend.linear_backward(dh, saved_x, saved_w_in, mask_in_dx ? Tensor() : saved,
                                  mask_in_dx ? Activation::Identity : act, has_b_in, dx_pending,
                                  Tensor(), dx, dW_in, db_in);
        }
        // The residual's gradient is dout, unless it went into dx above.
        const bool skip_in_dx = residual_is_x && saved_w_in.defined();
        const Tensor dresidual = need_residual && !skip_in_dx ? g : Tensor();
        return {dx.defined() ? dx.reshape(x_shape) : Tensor(), dW_in, db_in, dW_out, db_out,
                dresidual};
      },
      {&x, &W_in, &b_in, &W_out, &b_out, &residual});
}

}  // namespace tg
