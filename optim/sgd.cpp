// SGD: one pass per parameter over its raw contiguous data (CPU, float32 and float64), or a chain
// of tensor ops for parameters on other devices.
#include "optim/sgd.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/factories.h"
#include "kernels/cpu/loops.h"

namespace tg::optim {

namespace {

// p -= lr * d over elements [0, n), where d = g + wd * p, and with momentum
// d = buf = momentum * buf + d. Not inlined, so that the serial and the OpenMP branches of
// parallel_for run the same machine code (two inlined copies may contract a * b + c into FMAs
// differently, and results would then depend on the thread count).
template <typename T, bool kDecay, bool kMomentum>
TG_ONE_COPY void sgd_range(T* p, const T* g, T* buf, int64_t n, T lr, T momentum, T weight_decay) {
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i];
    if constexpr (kDecay) d = d + weight_decay * p[i];
    if constexpr (kMomentum) {
      d = momentum * buf[i] + d;
      buf[i] = d;
    }
    p[i] = p[i] - lr * d;
  }
}

template <typename T, bool kDecay, bool kMomentum>
void sgd_update(T* p, const T* g, T* buf, int64_t n, T lr, T momentum, T weight_decay) {
  cpu::parallel_for(n, cpu::kParallelGrain, [=](int64_t begin, int64_t end) {
    sgd_range<T, kDecay, kMomentum>(p + begin, g + begin, kMomentum ? buf + begin : nullptr,
                                    end - begin, lr, momentum, weight_decay);
  });
}

template <typename T>
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buffer, double lr,
              double momentum, double weight_decay) {
  T* p = param.data<T>();
  const T* g = grad.data<T>();
  T* buf = buffer.defined() ? buffer.data<T>() : nullptr;
  const int64_t n = param.numel();
  const T lr_t = static_cast<T>(lr), mom_t = static_cast<T>(momentum),
          wd_t = static_cast<T>(weight_decay);
  // Zero weight decay is skipped rather than multiplied in: 0 * inf would turn an infinite
  // parameter into NaN, which PyTorch (which also skips it) does not do.
  if (weight_decay != 0) {
    if (buf) sgd_update<T, true, true>(p, g, buf, n, lr_t, mom_t, wd_t);
    else sgd_update<T, true, false>(p, g, buf, n, lr_t, mom_t, wd_t);
  } else {
    if (buf) sgd_update<T, false, true>(p, g, buf, n, lr_t, mom_t, wd_t);
    else sgd_update<T, false, false>(p, g, buf, n, lr_t, mom_t, wd_t);
  }
  param.storage()->bump_version();  // a graph that saved the old values must not use the new
  if (buf) buffer.storage()->bump_version();
}

// The update of one parameter off the CPU (no fused kernel there yet): the same arithmetic in
// sgd_range's order, as a chain of elementwise tensor ops.
void sgd_step_with_ops(const Tensor& param, const Tensor& grad, const Tensor& buffer, double lr,
                       double momentum, double weight_decay) {
  const DType dtype = param.dtype();
  const Device device = param.device();
  const Tensor p = param.detach();
  Tensor d = grad.detach();
  if (weight_decay != 0) d = d + scalar(weight_decay, dtype, device) * p;
  if (buffer.defined()) {
    d = scalar(momentum, dtype, device) * buffer + d;
    Tensor(buffer).copy_(d);  // in place, through the optimiser's handle
  }
  Tensor(param).copy_(p - scalar(lr, dtype, device) * d);
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, double lr, double momentum, double weight_decay)
    : Optimizer(std::move(params)), momentum_(momentum), weight_decay_(weight_decay) {
  set_lr(lr);
  check(std::isfinite(momentum) && momentum >= 0, "sgd: momentum ", momentum,
        " must be finite and >= 0");
  check(std::isfinite(weight_decay) && weight_decay >= 0, "sgd: weight decay ", weight_decay,
        " must be finite and >= 0");
  if (momentum_ != 0) momentum_buffers_ = zeros_like_params();
}

void SGD::step() {
  // Check everything before writing anything, so that an error leaves no parameter half-updated.
  std::vector<Tensor> grads(params().size());
  for (size_t i = 0; i < params().size(); ++i) grads[i] = checked_grad("sgd", i);
  NoGradGuard no_grad;  // the update is not part of the graph
  for (size_t i = 0; i < params().size(); ++i) {
    if (!grads[i].defined()) continue;
    const Tensor buffer = momentum_buffers_.empty() ? Tensor() : momentum_buffers_[i];
    if (!params()[i].device().is_cpu())
      sgd_step_with_ops(params()[i], grads[i], buffer, lr(), momentum_, weight_decay_);
    else if (params()[i].dtype() == DType::Float32)
      sgd_step<float>(params()[i], grads[i], buffer, lr(), momentum_, weight_decay_);
    else
      sgd_step<double>(params()[i], grads[i], buffer, lr(), momentum_, weight_decay_);
  }
  count_step();
}

std::vector<std::pair<std::string, Tensor>> SGD::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < momentum_buffers_.size(); ++i)
    out.emplace_back("momentum." + std::to_string(i), momentum_buffers_[i]);
  return out;
}

void SGD::load_state(const std::map<std::string, Tensor>& state, int64_t steps) {
  load_buffers("sgd", this->state(), state, steps);
}

}  // namespace tg::optim
