// Unembed: the read-out to logits, x @ W_U + b_U, with W_U [d_model, d_vocab_out] and an
// optional b_U [d_vocab_out].
#pragma once

#include "core/random.h"
#include "nn/module.h"

namespace tg::nn {

class Unembed : public Module {
 public:
  // W_U ~ N(0, init_std^2), drawn from gen (Nanda et al. use 1/sqrt(d_vocab) of the *input*
  // vocabulary, which this layer does not know); b_U (when `bias`) starts at 0.
  Unembed(int64_t d_model, int64_t d_vocab_out, double init_std, Generator& gen,
          bool bias = false);
  Tensor forward(const Tensor& x) const;  // [..., d_model] -> [..., d_vocab_out], one fused op
  Tensor forward_reference(const Tensor& x) const;  // matmul, then the bias add
  const Tensor& W_U() const { return W_U_; }

 private:
  Tensor W_U_, b_U_;  // b_U_ undefined without bias
};

}  // namespace tg::nn
