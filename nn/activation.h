// Activation: the nonlinearities of the MLP layers, by enum and by name ("relu", "gelu", "x2").
#pragma once

#include <string>

#include "core/activation.h"
#include "core/tensor.h"

namespace tg::nn {

using tg::Activation;  // Identity never comes from a name: an MLP always has a nonlinearity

// "relu", "gelu", "x2" or "square"; otherwise tg::Error listing the valid names.
Activation parse_activation(const std::string& name);
const char* activation_name(Activation act);  // "relu", "gelu", "x2" (and "identity")
Tensor activate(const Tensor& x, Activation act);

}  // namespace tg::nn
