// What every backend's adam_step shares (host code): the step's scalars from AdamHyper
// (kernels/adam_scalars.h), the choice of the update's weight decay, and the checks of the
// call's lists.
#pragma once

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/adam_scalars.h"
#include "kernels/backend.h"

namespace tg {

template <typename T>
AdamScalars<T> adam_scalars(const AdamHyper& h) {
  return adam_scalars<T>(h.lr, h.step, h.beta1, h.beta2, h.eps, h.weight_decay);
}

// Calls update.template operator()<kL2, kDecoupled>() with the weight decay `h` asks for: kL2
// adds weight_decay * p to g (Adam), kDecoupled scales p by 1 - lr * weight_decay (AdamW). Zero
// weight decay is skipped rather than applied: 0 * inf is NaN (PyTorch skips it too).
template <typename Update>
void dispatch_weight_decay(const AdamHyper& h, Update&& update) {
  if (h.weight_decay == 0) update.template operator()<false, false>();
  else if (h.decoupled) update.template operator()<false, true>();
  else update.template operator()<true, false>();
}

// adam_step's contract (kernels/backend.h), checked before anything is written.
inline void check_adam_step(Device device, const std::vector<Tensor>& params,
                            const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
                            const std::vector<Tensor>& exp_avg_sq, const AdamHyper& h) {
  check(grads.size() == params.size() && exp_avg.size() == params.size() &&
            exp_avg_sq.size() == params.size(),
        "adam_step: ", params.size(), " parameters but ", grads.size(), " gradients, ",
        exp_avg.size(), " exp_avg and ", exp_avg_sq.size(), " exp_avg_sq buffers");
  if (h.device_steps.defined()) {
    const Tensor& c = h.device_steps;
    check(c.device() == device && c.dtype() == DType::Int64 && c.numel() == 1 &&
              c.is_contiguous(),
          "adam_step: device_steps is ", dtype_name(c.dtype()), " ", shape_str(c.shape()), " on ",
          c.device().str(), "; expected int64 [1] on ", device.str());
    check(h.lr_rule.warmup_steps >= 0 &&
              (!h.lr_rule.cosine || h.lr_rule.total_steps > h.lr_rule.warmup_steps),
          "adam_step: lr_rule needs warmup_steps >= 0, and total_steps > warmup_steps for cosine");
  } else {
    check(h.step >= 1, "adam_step: step ", h.step, " must be >= 1");
  }
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
