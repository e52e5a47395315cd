// ⊥Grad: the projection of each gradient off its parameter, as tensor ops (so on every device).
#include "optim/orthogonal_grad.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace tg::optim {

namespace {

// a.b over all elements, in double.
double dot(const Tensor& a, const Tensor& b) {
  return sum(a.to(DType::Float64) * b.to(DType::Float64)).item();
}

}  // namespace

void orthogonalize_gradients(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  for (const Tensor& param : params) {
    const Tensor g = param.grad();
    if (!g.defined()) continue;
    const Tensor w = param.detach();
    const double ww = dot(w, w);
    if (ww == 0) continue;
    const double g_norm = std::sqrt(dot(g, g));
    const Tensor g_perp = g - w * (dot(w, g) / ww);
    const double perp_norm = std::sqrt(dot(g_perp, g_perp));
    Tensor(g).copy_(perp_norm > 0 ? g_perp * (g_norm / perp_norm) : g_perp);  // else all 0
  }
}

}  // namespace tg::optim
