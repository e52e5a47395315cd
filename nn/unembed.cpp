// Unembed: linear read-out to logits.
#include "nn/unembed.h"

#include "autograd/ops.h"
#include "core/factories.h"
#include "nn/linear.h"

namespace tg::nn {

Unembed::Unembed(int64_t d_model, int64_t d_vocab_out, double init_std, Generator& gen, bool bias) {
  check(d_model > 0 && d_vocab_out > 0, "Unembed: d_model and d_vocab_out must be positive, got ",
        d_model, " and ", d_vocab_out);
  W_U_ = register_parameter("W_U", normal({d_model, d_vocab_out}, 0, init_std, gen));
  if (bias) b_U_ = register_parameter("b_U", zeros({d_vocab_out}));
}

Tensor Unembed::forward(const Tensor& x) const { return tg::linear(x, W_U_, b_U_); }

Tensor Unembed::forward_reference(const Tensor& x) const {
  return linear(x, W_U_, b_U_, "Unembed");
}

}  // namespace tg::nn
