// Optimizer: parameter checks, gradient checks, and the checkpoint loading the optimisers share.
#include "optim/optimizer.h"

#include <cmath>
#include <set>

#include "autograd/grad_mode.h"
#include "core/factories.h"

namespace tg::optim {

Optimizer::Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {
  check(!params_.empty(), "optimizer: empty parameter list");
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    check(p.defined(), "optimizer: parameter ", i, " is an undefined tensor");
    check(is_floating(p.dtype()), "optimizer: parameter ", i, " of shape ", shape_str(p.shape()),
          " is ", dtype_name(p.dtype()), "; only float tensors can be optimised");
    check(p.is_leaf(), "optimizer: parameter ", i, " of shape ", shape_str(p.shape()),
          " was computed by an op; optimise leaf tensors");
    check(p.is_contiguous(), "optimizer: parameter ", i, " of shape ", shape_str(p.shape()),
          " is not contiguous (strides ", shape_str(p.strides()),
          "); the fused updates need contiguous parameters");
    for (size_t j = 0; j < i; ++j)
      check(!params_[j].same(p), "optimizer: parameter ", i, " is the same tensor as parameter ",
            j, "; list each parameter once");
  }
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  check(std::isfinite(lr) && lr >= 0, "optimizer: learning rate ", lr,
        " must be finite and >= 0");
  lr_ = lr;
}

int64_t Optimizer::steps() const {
  return device_steps_.defined() ? device_steps_.item<int64_t>() : steps_;
}

void Optimizer::keep_step_on_device(const LrRule&) {
  throw Error("optimizer: this optimiser cannot keep its step count on the device (adam and "
              "adamw can)");
}

void Optimizer::move_step_count_to_device(const LrRule& schedule) {
  check(schedule.warmup_steps >= 0 &&
            (!schedule.cosine || schedule.total_steps > schedule.warmup_steps),
        "optimizer: keep_step_on_device: the schedule needs warmup_steps >= 0, and total_steps "
        "> warmup_steps for cosine");
  const Device device = params_.front().device();
  for (const Tensor& p : params_)
    check(p.device() == device && p.dtype() == params_.front().dtype(),
          "optimizer: keep_step_on_device: parameters on ", device.str(), " and ",
          p.device().str(), " (or of two dtypes); the count lives on one device");
  if (!device_steps_.defined())
    device_steps_ = full({1}, static_cast<double>(steps_), DType::Int64, device);
  device_schedule_ = schedule;
}

Tensor Optimizer::checked_grad(const char* op, size_t i) const {
  const Tensor& p = params_[i];
  const Tensor g = p.grad();
  if (!g.defined()) return g;
  check(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(), op,
        ": parameter ", i, " is ", dtype_name(p.dtype()), " ", shape_str(p.shape()), " on ",
        p.device().str(), " but its gradient is ", dtype_name(g.dtype()), " ",
        shape_str(g.shape()), " on ", g.device().str());
  // Also guards against a parameter whose geometry changed after construction.
  check(p.is_contiguous(), op, ": parameter ", i, " of shape ", shape_str(p.shape()),
        " is not contiguous");
  return contiguous_copy_if_needed(g);
}

std::vector<Tensor> Optimizer::zeros_like_params() const {
  std::vector<Tensor> buffers;
  buffers.reserve(params_.size());
  for (const Tensor& p : params_) buffers.push_back(zeros(p.shape(), p.dtype(), p.device()));
  return buffers;
}

void Optimizer::load_buffers(const char* op,
                             const std::vector<std::pair<std::string, Tensor>>& buffers,
                             const std::map<std::string, Tensor>& state, int64_t steps) {
  check(steps >= 0, op, ": load_state: step count ", steps, " is negative");
  std::set<std::string> expected;
  for (const auto& [name, buffer] : buffers) {
    expected.insert(name);
    const auto found = state.find(name);
    check(found != state.end(), op, ": load_state: missing entry \"", name, "\" (",
          dtype_name(buffer.dtype()), " ", shape_str(buffer.shape()), ")");
    const Tensor& t = found->second;
    check(t.defined(), op, ": load_state: entry \"", name, "\" is an undefined tensor");
    check(t.shape() == buffer.shape(), op, ": load_state: entry \"", name, "\" has shape ",
          shape_str(t.shape()), ", expected ", shape_str(buffer.shape()));
    check(t.dtype() == buffer.dtype(), op, ": load_state: entry \"", name, "\" is ",
          dtype_name(t.dtype()), ", expected ", dtype_name(buffer.dtype()));
    check(t.device() == buffer.device(), op, ": load_state: entry \"", name, "\" is on ",
          t.device().str(), ", expected ", buffer.device().str());
  }
  for (const auto& [name, t] : state)
    check(expected.count(name) != 0, op, ": load_state: unexpected entry \"", name, "\"",
          expected.empty() ? " (this optimiser keeps no state)" : "");

  NoGradGuard no_grad;
  for (const auto& [name, buffer] : buffers) {
    Tensor live = buffer;  // shares the optimiser's storage
    live.copy_(state.at(name));
  }
  steps_ = steps;
  if (device_steps_.defined()) device_steps_.fill_(static_cast<double>(steps));
}

}  // namespace tg::optim
