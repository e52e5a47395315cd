// MLPBlock: the transformer's position-wise MLP, act(x @ W_in + b_in) @ W_out + b_out, with
// W_in [d_model, d_mlp], b_in [d_mlp], W_out [d_mlp, d_model], b_out [d_model].
#pragma once

#include "core/random.h"
#include "nn/activation.h"
#include "nn/module.h"

namespace tg::nn {

class MLPBlock : public Module {
 public:
  // W_in, W_out ~ N(0, 1) / sqrt(d_model) (Nanda et al.), drawn from gen in that order; biases 0.
  MLPBlock(int64_t d_model, int64_t d_mlp, Activation act, Generator& gen);
  // [..., d_model] -> [..., d_model] as two fused linear ops (bias and activation in the GEMM's
  // epilogue); forward_reference composes matmul, add and the activation. A residual
  // [..., d_model] (undefined: none) is added to the output by the second one's epilogue: a
  // residual block's h + mlp(h) in the same launch.
  Tensor forward(const Tensor& x, const Tensor& residual = Tensor()) const;
  Tensor forward_reference(const Tensor& x) const;
  Activation activation() const { return act_; }

 private:
  Activation act_;
  Tensor W_in_, b_in_, W_out_, b_out_;
};

}  // namespace tg::nn
