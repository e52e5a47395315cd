// Embed: the token embedding, a lookup of rows of W_E [d_vocab, d_model].
#pragma once

#include "core/random.h"
#include "nn/module.h"

namespace tg::nn {

class Embed : public Module {
 public:
  // W_E ~ N(0, 1) / sqrt(d_model) (Nanda et al.), drawn from gen.
  Embed(int64_t d_vocab, int64_t d_model, Generator& gen);
  // int64 tokens [B, T] (any shape) -> [B, T, d_model]
  Tensor forward(const Tensor& tokens) const;
  const Tensor& W_E() const { return W_E_; }

 private:
  Tensor W_E_;
};

}  // namespace tg::nn
