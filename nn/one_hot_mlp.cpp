// OneHotMLP: the one-hot product computed as a gather of rows of W_in.
#include "nn/one_hot_mlp.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/factories.h"

namespace tg::nn {

OneHotMLP::OneHotMLP(int64_t p, int64_t width, Activation act, Generator& gen, double dropout)
    : p_(p), act_(act) {
  check(p > 0 && width > 0, "OneHotMLP: p and width must be positive, got ", p, " and ", width);
  W_in_ = register_parameter(
      "W_in", normal({2 * p, width}, 0, 1 / std::sqrt(static_cast<double>(2 * p)), gen));
  W_out_ = register_parameter(
      "W_out", normal({width, p}, 0, 1 / std::sqrt(static_cast<double>(width)), gen));
  // After the weights, so that they are drawn as without dropout; p = 0 draws nothing.
  dropout_ = register_module("dropout", std::make_shared<Dropout>(dropout, gen));
}

Tensor OneHotMLP::forward(const Tensor& tokens) {
  check_tokens("OneHotMLP", tokens, 2, 2, p_);
  // (onehot(a) ++ onehot(b)) @ W_in picks row a and row p + b of W_in and adds them: the same
  // product as a gather, without building the [B, 2p] one-hot matrix (or its [B, 2p] x [2p, N]
  // GEMM); embedding's backward scatter-adds into those rows, as the matmul's would.
  const Tensor a = tokens.select(1, 0), b = tokens.select(1, 1) + static_cast<double>(p_);
  const Tensor hidden = activate(embedding(W_in_, a) + embedding(W_in_, b), act_);  // [B, width]
  return dropout_->forward(hidden).matmul(W_out_);                                 // [B, p]
}

Tensor OneHotMLP::forward_reference(const Tensor& tokens) {
  check_tokens("OneHotMLP", tokens, 2, 2, p_);
  const Tensor inputs =
      cat({one_hot(tokens.select(1, 0), p_), one_hot(tokens.select(1, 1), p_)}, 1);  // [B, 2p]
  const Tensor hidden = activate(inputs.to(W_in_.dtype()).matmul(W_in_), act_);  // [B, width]
  return dropout_->forward(hidden).matmul(W_out_);
}

}  // namespace tg::nn
