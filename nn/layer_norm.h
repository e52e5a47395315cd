// LayerNorm: normalises the last axis, then scales by w [d] and shifts by b [d]
// (TransformerLens names), initialised to 1 and 0.
#pragma once

#include "nn/module.h"

namespace tg::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t d, double eps = 1e-5);
  Tensor forward(const Tensor& x) const;  // [..., d] -> [..., d]
  const Tensor& w() const { return w_; }
  const Tensor& b() const { return b_; }

 private:
  Tensor w_, b_;
  double eps_;
};

}  // namespace tg::nn
