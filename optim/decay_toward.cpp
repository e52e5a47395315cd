// Weight decay toward reference weights: the decoupled and the L2 form, as tensor ops.
#include "optim/decay_toward.h"

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace tg::optim {

namespace {

void check_targets(const char* op, const std::vector<Tensor>& params,
                   const std::vector<Tensor>& targets) {
  check(params.size() == targets.size(), op, ": ", params.size(), " parameters but ",
        targets.size(), " targets");
  for (size_t i = 0; i < params.size(); ++i)
    check(targets[i].shape() == params[i].shape() && targets[i].dtype() == params[i].dtype() &&
              targets[i].device() == params[i].device(),
          op, ": target ", i, " is ", dtype_name(targets[i].dtype()), " ",
          shape_str(targets[i].shape()), " on ", targets[i].device().str(), ", its parameter ",
          dtype_name(params[i].dtype()), " ", shape_str(params[i].shape()), " on ",
          params[i].device().str());
}

}  // namespace

void decay_toward(const std::vector<Tensor>& params, const std::vector<Tensor>& targets,
                  double factor) {
  check_targets("decay_toward", params, targets);
  if (factor == 0) return;
  NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].grad().defined()) continue;
    const Tensor theta = params[i].detach();
    Tensor(params[i]).copy_(theta - (theta - targets[i]) * factor);
  }
}

void add_decay_toward_to_grad(const std::vector<Tensor>& params,
                              const std::vector<Tensor>& targets, double wd) {
  check_targets("add_decay_toward_to_grad", params, targets);
  if (wd == 0) return;
  NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor g = params[i].grad();
    if (!g.defined()) continue;
    Tensor(g).copy_(g + (params[i].detach() - targets[i]) * wd);
  }
}

}  // namespace tg::optim
