// Layer normalisation over the last axis, with optional elementwise weight and bias:
//   y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps)  (biased variance)
// The forward saves the per-row mean and rstd; backward is one fused kernel.
#include "autograd/ops/common.h"

namespace tg {

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  check_floating("layer_norm", x);
  check(x.dim() >= 1, "layer_norm: input must have at least one dimension");
  const int64_t d = x.shape().back();
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    check_same_device_and_dtype("layer_norm", x, *p);
    check(p->shape() == Shape{d}, "layer_norm: x ", shape_str(x.shape()), " needs weight and bias [",
          d, "], got ", shape_str(p->shape()));
  }
  check(eps >= 0, "layer_norm: eps must be >= 0, got ", eps);
  Tensor y, mu, rstd;
  backend_for(x.device()).layer_norm(x, weight, bias, eps, y, mu, rstd);
  if (!needs_grad({&x, &weight, &bias})) return y;
  return record(y, "LayerNormBackward",
                [x = save(x), weight = save(weight), mu = save(mu), rstd = save(rstd),
                 has_bias = bias.defined()](
                    const Tensor& g) -> std::vector<Tensor> {
                  Tensor dx, dw, db;
                  backend_for(g.device()).layer_norm_backward(g, x, weight, mu, rstd, dx, dw, db);
                  return {dx, weight.defined() ? dw : Tensor(), has_bias ? db : Tensor()};
                },
                {&x, &weight, &bias});
}

}  // namespace tg
