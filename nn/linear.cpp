// Linear: the affine layer, and the flattened product the named layers share.
#include "nn/linear.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/factories.h"

namespace tg::nn {

Tensor linear(const Tensor& x, const Tensor& W, const Tensor& b, const char* layer) {
  const int64_t in = W.size(0);
  check(x.dim() >= 1 && x.shape().back() == in, layer, ": x must be [..., ", in, "], got ",
        shape_str(x.shape()));
  Shape out_shape = x.shape();
  out_shape.back() = W.size(1);
  Tensor out = x.reshape({-1, in}).matmul(W);
  if (b.defined()) out = out + b;
  return out.reshape(out_shape);
}

Linear::Linear(int64_t in, int64_t out, bool bias, Generator& gen, double init_std) {
  check(in > 0 && out > 0, "Linear: in and out must be positive, got ", in, " and ", out);
  const double std = init_std > 0 ? init_std : 1.0 / std::sqrt(static_cast<double>(in));
  W_ = register_parameter("W", normal({in, out}, 0, std, gen));
  if (bias) b_ = register_parameter("b", zeros({out}));
}

}  // namespace tg::nn
