// Dropout module over tg::dropout.
#include "nn/dropout.h"

#include "autograd/ops.h"

namespace tg::nn {

Dropout::Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {
  check(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) const { return dropout(x, p_, is_training(), *gen_); }

}  // namespace tg::nn
