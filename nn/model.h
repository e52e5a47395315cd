// Model: a Module that maps a batch of token sequences to logits — what the grokking lab trains.
#pragma once

#include <vector>

#include "nn/module.h"

namespace tg::nn {

class Model : public Module {
 public:
  // tokens int64 [B, T] -> logits float [B, d_vocab_out] (the transformer reads the last position).
  // The fast path: it computes only what the logits need, with fused ops.
  virtual Tensor forward(const Tensor& tokens) = 0;
  // The same function as the straightforward composition of elementary ops, kept as the
  // reference the fast path is tested against (tests/test_fast_path.cpp). Equal to forward()
  // within float32 rounding, and much slower.
  virtual Tensor forward_reference(const Tensor& tokens) { return forward(tokens); }

 protected:
  // Throws tg::Error, prefixed with `model`, unless tokens is int64 [B, T] with
  // min_len <= T <= max_len and every token in [0, vocab). CPU tokens are checked on the host and
  // returned, row-major; tokens on a GPU are checked there, with one count read back (a
  // synchronisation), and nothing is returned.
  static std::vector<int64_t> check_tokens(const char* model, const Tensor& tokens,
                                           int64_t min_len, int64_t max_len, int64_t vocab);
};

}  // namespace tg::nn
