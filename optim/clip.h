// Gradient and weight norms, and gradient clipping by the global norm.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace tg::optim {

// sqrt(sum of g^2) over the gradients of `params` that are defined (undefined ones are skipped),
// accumulated in double. The sum runs over fixed blocks, so it does not depend on thread count.
double global_grad_norm(const std::vector<Tensor>& params);

// Like torch.nn.utils.clip_grad_norm_: when the global gradient norm exceeds max_norm, scales
// every gradient in place by max_norm / (norm + 1e-6); returns the norm before clipping.
// (Precisely: scales when that factor is below 1, as PyTorch's clamped factor does. A NaN norm
// leaves the gradients as they are, where PyTorch makes them all NaN: the step's loss check stops
// a run either way.)
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

// sqrt(sum of x^2) over all elements of all `tensors` (each defined and floating), in double:
// the weight norm ||theta||.
double global_norm(const std::vector<Tensor>& tensors);

// global_norm's sum of squares (before the square root) of tensors all on one device other than
// the CPU, left there as a 0-d float64 tensor: the same kernels in the same order, so the same
// bits. It reads nothing back, so it can be recorded (Backend::capture), as a run's evals are.
Tensor sum_of_squares_on_device(const std::vector<Tensor>& tensors);

}  // namespace tg::optim
