// AdamScalars: the per-step scalars of Adam's update in the parameters' type, computed once per
// step in double as PyTorch does. Host code and a CUDA kernel (adam_step with its step count on
// the device, kernels/cuda/adam.cu) compute them with this one function.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace tg {

// The update of adam_lanes (kernels/cpu/adam.cpp), per element, with these scalars:
//   L2:        g = g + weight_decay * p
//   decoupled: p = p * decay
//   m = beta1 * m + one_minus_beta1 * g;   v = beta2 * v + one_minus_beta2 * (g * g)
//   p = p - step_size * (m / (sqrt(v) / bias2_sqrt + eps))
template <typename T>
struct AdamScalars {
  T beta1, one_minus_beta1, beta2, one_minus_beta2;
  T step_size;     // lr / (1 - b1^t)
  T bias2_sqrt;    // sqrt(1 - b2^t)
  T eps;
  T weight_decay;  // L2 (Adam)
  T decay;         // 1 - lr * weight_decay (AdamW)
};

// The scalars of step t >= 1 at learning rate lr.
template <typename T>
TG_HOST_DEVICE inline AdamScalars<T> adam_scalars(double lr, int64_t t, double beta1,
                                                  double beta2, double eps,
                                                  double weight_decay) {
  const double bias1 = 1 - ::pow(beta1, static_cast<double>(t));
  const double bias2 = 1 - ::pow(beta2, static_cast<double>(t));
  return {static_cast<T>(beta1),
          static_cast<T>(1 - beta1),
          static_cast<T>(beta2),
          static_cast<T>(1 - beta2),
          static_cast<T>(lr / bias1),
          static_cast<T>(::sqrt(bias2)),
          static_cast<T>(eps),
          static_cast<T>(weight_decay),
          static_cast<T>(1 - lr * weight_decay)};
}

}  // namespace tg
