// Linear: y = x @ W + b with W [in, out] (TransformerLens's orientation, not PyTorch's [out, in])
// and an optional b [out]; and `linear()`, the same product on given weights, which the layers
// with their own parameter names (MLPBlock, Unembed) share.
#pragma once

#include "core/random.h"
#include "nn/module.h"

namespace tg::nn {

// x [..., in] @ W [in, out] (+ b [out]) -> [..., out]. The leading axes are flattened first, so
// the product is one GEMM and its weight gradient one GEMM too (a batched [B, T, in] @ [in, out]
// would run B small products and materialise [B, in, out] before summing). `layer` names the
// caller in errors.
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& b, const char* layer);

class Linear : public Module {
 public:
  // W ~ N(0, init_std^2) (default 1/sqrt(in)), drawn from gen; b starts at 0.
  Linear(int64_t in, int64_t out, bool bias, Generator& gen, double init_std = 0);
  Tensor forward(const Tensor& x) const { return linear(x, W_, b_, "Linear"); }
  const Tensor& W() const { return W_; }
  const Tensor& b() const { return b_; }  // undefined without bias

 private:
  Tensor W_, b_;
};

}  // namespace tg::nn
