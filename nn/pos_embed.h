// PosEmbed: the learned positional embedding W_pos [n_ctx, d_model].
#pragma once

#include "core/random.h"
#include "nn/module.h"

namespace tg::nn {

class PosEmbed : public Module {
 public:
  // W_pos ~ N(0, 1) / sqrt(d_model) (Nanda et al.), drawn from gen.
  PosEmbed(int64_t n_ctx, int64_t d_model, Generator& gen);
  // tokens [B, T] (only the shape is used) -> the first T rows of W_pos, broadcast to
  // [B, T, d_model] (a stride-0 view, no copy).
  Tensor forward(const Tensor& tokens) const;
  const Tensor& W_pos() const { return W_pos_; }

 private:
  Tensor W_pos_;
};

}  // namespace tg::nn
