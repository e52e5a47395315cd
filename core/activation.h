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

// Calls fn.template operator()<act>() with act a compile-time constant, so that a kernel is
// compiled once per activation, with no branch on it per element (the backends' epilogues).
template <typename Fn>
void dispatch_activation(Activation act, Fn&& fn) {
  switch (act) {
    case Activation::Identity: fn.template operator()<Activation::Identity>(); return;
    case Activation::Relu: fn.template operator()<Activation::Relu>(); return;
    case Activation::Gelu: fn.template operator()<Activation::Gelu>(); return;
    case Activation::Square: fn.template operator()<Activation::Square>(); return;
  }
}

}  // namespace tg
