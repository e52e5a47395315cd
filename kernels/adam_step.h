// What every backend's adam_step shares (host code): the step's scalars in the parameters' type,
// computed once from AdamHyper in double as PyTorch does, and the checks of the call's lists.
#pragma once

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"

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

template <typename T>
AdamScalars<T> adam_scalars(const AdamHyper& h) {
  const double bias1 = 1 - std::pow(h.beta1, static_cast<double>(h.step));
  const double bias2 = 1 - std::pow(h.beta2, static_cast<double>(h.step));
  return {static_cast<T>(h.beta1),
          static_cast<T>(1 - h.beta1),
          static_cast<T>(h.beta2),
          static_cast<T>(1 - h.beta2),
          static_cast<T>(h.lr / bias1),
          static_cast<T>(std::sqrt(bias2)),
          static_cast<T>(h.eps),
          static_cast<T>(h.weight_decay),
          static_cast<T>(1 - h.lr * h.weight_decay)};
}

// adam_step's contract (kernels/backend.h), checked before anything is written.
inline void check_adam_step(Device device, const std::vector<Tensor>& params,
                            const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
                            const std::vector<Tensor>& exp_avg_sq, const AdamHyper& h) {
  check(grads.size() == params.size() && exp_avg.size() == params.size() &&
            exp_avg_sq.size() == params.size(),
        "adam_step: ", params.size(), " parameters but ", grads.size(), " gradients, ",
        exp_avg.size(), " exp_avg and ", exp_avg_sq.size(), " exp_avg_sq buffers");
  check(h.step >= 1, "adam_step: step ", h.step, " must be >= 1");
  if (params.empty()) return;
  const DType dtype = params[0].dtype();
  check(is_floating(dtype), "adam_step: not defined for ", dtype_name(dtype));
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor* entry[] = {&params[i], &grads[i], &exp_avg[i], &exp_avg_sq[i]};
    const char* role[] = {"parameter", "gradient", "exp_avg", "exp_avg_sq"};
    for (int k = 0; k < 4; ++k) {
      const Tensor& t = *entry[k];
      check(t.defined(), "adam_step: ", role[k], " ", i, " is an undefined tensor");
      check(t.device() == device && t.dtype() == dtype && t.shape() == params[i].shape() &&
                t.is_contiguous(),
            "adam_step: ", role[k], " ", i, " is ", dtype_name(t.dtype()), " ",
            shape_str(t.shape()), (t.is_contiguous() ? "" : " (strided)"), " on ",
            t.device().str(), "; expected contiguous ", dtype_name(dtype), " ",
            shape_str(params[i].shape()), " on ", device.str());
    }
  }
}

}  // namespace tg
