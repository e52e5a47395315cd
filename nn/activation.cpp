// Activation: parsing, naming, and applying the MLP nonlinearities.
#include "nn/activation.h"

#include "autograd/ops.h"

namespace tg::nn {

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::Relu;
  if (name == "gelu") return Activation::Gelu;
  if (name == "x2" || name == "square") return Activation::Square;
  throw Error(cat("activation: unknown name '", name, "' (valid: relu, gelu, x2, square)"));
}

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::Identity: return "identity";
    case Activation::Relu: return "relu";
    case Activation::Gelu: return "gelu";
    case Activation::Square: return "x2";
  }
  return "?";
}

Tensor activate(const Tensor& x, Activation act) {
  switch (act) {
    case Activation::Identity: return x;
    case Activation::Relu: return relu(x);
    case Activation::Gelu: return gelu(x);
    case Activation::Square: return x * x;
  }
  throw Error("activate: unknown activation");
}

}  // namespace tg::nn
