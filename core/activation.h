// Activation: the MLP nonlinearities, named once for every layer that applies one (nn's
// modules, the fused linear op and the backends' epilogue kernels).
#pragma once

#include <cstdint>

namespace tg {

enum class Activation : uint8_t {
  Identity,
  Relu,
  Gelu,    // exact: x * Phi(x), as torch.nn.GELU()
  Square,  // x^2 (Gromov's MLP)
};

}  // namespace tg
