// Unembed: linear read-out to logits.
#include "nn/unembed.h"

#include "autograd/ops.h"
#include "core/factories.h"

namespace tg::nn {

Unembed::Unembed(int64_t d_model, int64_t d_vocab_out, double init_std, Generator& gen, bool bias)
    : d_model_(d_model) {
  check(d_model > 0 && d_vocab_out > 0, "Unembed: d_model and d_vocab_out must be positive, got ",
        d_model, " and ", d_vocab_out);
  W_U_ = register_parameter("W_U", normal({d_model, d_vocab_out}, 0, init_std, gen));
  if (bias) b_U_ = register_parameter("b_U", zeros({d_vocab_out}));
}

Tensor Unembed::forward(const Tensor& x) const {
  check(x.dim() >= 1 && x.shape().back() == d_model_, "Unembed: x must be [..., d_model = ",
        d_model_, "], got ", shape_str(x.shape()));
  Shape out_shape = x.shape();
  out_shape.back() = W_U_.size(1);
  Tensor out = x.reshape({-1, d_model_}).matmul(W_U_);
  if (b_U_.defined()) out = out + b_U_;
  return out.reshape(out_shape);
}

}  // namespace tg::nn
