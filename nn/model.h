// Model: a Module that maps a batch of token sequences to logits — what the grokking lab trains.
#pragma once

#include "nn/module.h"

namespace tg::nn {

class Model : public Module {
 public:
  // tokens int64 [B, T] -> logits float [B, d_vocab_out] (the transformer reads the last position).
  virtual Tensor forward(const Tensor& tokens) = 0;

 protected:
  // Throws tg::Error, prefixed with `model`, unless tokens is int64 [B, T] with
  // min_len <= T <= max_len and every token in [0, vocab).
  static void check_tokens(const char* model, const Tensor& tokens, int64_t min_len,
                           int64_t max_len, int64_t vocab);
};

}  // namespace tg::nn
