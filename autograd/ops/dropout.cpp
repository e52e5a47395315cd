// Dropout: multiply by a mask of 0 and 1/(1-p) drawn from the seeded counter-based generator, so
// the same seed gives the same mask on every platform and device. Backward multiplies by the mask.
#include "autograd/ops/common.h"

namespace tg {

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_floating("dropout", x);
  check(p >= 0 && p < 1, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0) return x;
  Tensor mask = Tensor::empty(x.shape(), x.dtype(), x.device());
  const uint64_t counter = gen.reserve(x.numel());
  backend_for(x.device()).fill_random(mask, RandomKind::DropoutMask, gen.seed(), counter, p, 0);
  return x * mask;  // mul records the backward (g * mask)
}

}  // namespace tg
