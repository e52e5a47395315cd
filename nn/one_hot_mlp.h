// OneHotMLP: the two-layer MLP of Gromov (2023) / Liu et al. (2022) on (a, b) pairs,
//   logits = dropout(act((onehot(a) ++ onehot(b)) @ W_in)) @ W_out,
// with W_in [2p, width] and W_out [width, p], no biases. Dropout (on the hidden units, in
// training mode only) is off unless asked for: it lets "dropout without weight decay" (seed
// §3.6) be studied on this fast model.
#pragma once

#include "core/random.h"
#include "nn/activation.h"
#include "nn/dropout.h"
#include "nn/model.h"

namespace tg::nn {

class OneHotMLP : public Model {
 public:
  // W_in ~ N(0, 1) / sqrt(2p) and W_out ~ N(0, 1) / sqrt(width) (1/sqrt(fan_in)), drawn from gen
  // in that order. act is usually Square (Gromov) or Relu. gen also drives dropout (probability
  // `dropout` on the hidden units), so it must outlive the model.
  OneHotMLP(int64_t p, int64_t width, Activation act, Generator& gen, double dropout = 0);
  // The number of parameters of OneHotMLP(p, width, ...), counted without building it.
  static double parameter_count(int64_t p, int64_t width) {
    return 3 * static_cast<double>(p) * static_cast<double>(width);  // W_in [2p, w], W_out [w, p]
  }

  // int64 tokens [B, 2] = (a, b) with a, b in [0, p) -> logits [B, p]
  Tensor forward(const Tensor& tokens) override;
  // The literal model: the one-hot matrix [B, 2p] times W_in, the activation, dropout, times
  // W_out.
  Tensor forward_reference(const Tensor& tokens) override;

  int64_t p() const { return p_; }
  const Tensor& W_in() const { return W_in_; }
  const Tensor& W_out() const { return W_out_; }

 private:
  int64_t p_;
  Activation act_;
  Tensor W_in_, W_out_;
  std::shared_ptr<Dropout> dropout_;
};

}  // namespace tg::nn
