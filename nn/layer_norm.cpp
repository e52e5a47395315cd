// LayerNorm module over tg::layer_norm.
#include "nn/layer_norm.h"

#include "autograd/ops.h"
#include "core/factories.h"

namespace tg::nn {

LayerNorm::LayerNorm(int64_t d, double eps) : eps_(eps) {
  check(d > 0, "LayerNorm: d must be positive, got ", d);
  w_ = register_parameter("w", ones({d}));
  b_ = register_parameter("b", zeros({d}));
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, w_, b_, eps_); }

}  // namespace tg::nn
