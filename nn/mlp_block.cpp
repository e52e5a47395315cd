// MLPBlock: the position-wise MLP, computed on all positions as one [N, d_model] matrix.
#include "nn/mlp_block.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/factories.h"
#include "nn/linear.h"

namespace tg::nn {

MLPBlock::MLPBlock(int64_t d_model, int64_t d_mlp, Activation act, Generator& gen)
    : act_(act) {
  check(d_model > 0 && d_mlp > 0, "MLPBlock: d_model and d_mlp must be positive, got ", d_model,
        " and ", d_mlp);
  const double std = 1 / std::sqrt(static_cast<double>(d_model));
  W_in_ = register_parameter("W_in", normal({d_model, d_mlp}, 0, std, gen));
  b_in_ = register_parameter("b_in", zeros({d_mlp}));
  W_out_ = register_parameter("W_out", normal({d_mlp, d_model}, 0, std, gen));
  b_out_ = register_parameter("b_out", zeros({d_model}));
}

Tensor MLPBlock::forward(const Tensor& x, const Tensor& residual) const {
  return tg::mlp(x, W_in_, b_in_, act_, W_out_, b_out_, residual);
}

Tensor MLPBlock::forward_reference(const Tensor& x) const {
  return linear(activate(linear(x, W_in_, b_in_, "MLPBlock"), act_), W_out_, b_out_, "MLPBlock");
}

}  // namespace tg::nn
