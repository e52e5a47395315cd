// softmax and log-softmax along an axis. Both save only their output: the backward of
//   y = softmax(x)      is  dx = y * (dy - sum(dy * y))
//   y = log_softmax(x)  is  dx = dy - exp(y) * sum(dy)
#include "autograd/ops/common.h"

namespace tg {

namespace {

Tensor softmax_impl(const Tensor& x, int64_t axis, bool log, const char* name) {
  check_floating(name, x);
  const int a = normalize_axis(axis, x.shape(), name);
  Tensor out = backend_for(x.device()).softmax(x, a, log);
  if (!needs_grad({&x})) return out;
  return record(out, log ? "LogSoftmaxBackward" : "SoftmaxBackward",
                [y = save(out), a, log](const Tensor& g) -> std::vector<Tensor> {
                  return {backend_for(g.device()).softmax_backward(y, g, a, log)};
                },
                {&x});
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) { return softmax_impl(x, axis, false, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t axis) {
  return softmax_impl(x, axis, true, "log_softmax");
}

}  // namespace tg
