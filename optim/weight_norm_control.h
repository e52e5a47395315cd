// Omnigrok's control of the weight norm (Liu et al. 2022, "Omnigrok: grokking beyond algorithmic
// data"): grokking appears when training starts from a large weight norm, and disappears when the
// norm is held fixed. So a run can scale its initial weights (--init-scale) and keep the global
// norm ||theta||_2 constant through training (--weight-norm-constraint).
#pragma once

#include <vector>

#include "core/tensor.h"

namespace tg::optim {

// Multiplies every element of every tensor by `factor`, in place, outside the graph.
void scale_weights(const std::vector<Tensor>& params, double factor);

// Rescales all tensors together, in place, so that their global L2 norm (optim::global_norm)
// becomes `norm`: the projection back onto the sphere after an optimiser step. Tensors that are
// all zero stay zero (there is no direction to scale), and a non-finite norm is left alone.
void constrain_weight_norm(const std::vector<Tensor>& params, double norm);

}  // namespace tg::optim
