// Grokfast's EMA and MA gradient filters, as tensor ops (so on every device), outside the graph.
#include "optim/grokfast.h"

#include <cmath>
#include <set>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/factories.h"

namespace tg::optim {

GrokfastFilter::GrokfastFilter(std::vector<Tensor> params, Kind kind, double lamb, double alpha,
                               int64_t window)
    : params_(std::move(params)), kind_(kind), lamb_(lamb), alpha_(alpha), window_(window) {
  check(std::isfinite(lamb), "grokfast: lamb ", lamb, " must be finite");
  check(alpha >= 0 && alpha < 1, "grokfast: alpha ", alpha, " must be in [0, 1)");
  check(window >= 1, "grokfast: window ", window, " must be at least 1");
  for (const Tensor& p : params_) {
    check(p.defined() && is_floating(p.dtype()), "grokfast: parameters must be float tensors");
    if (kind_ == Kind::Ema) {
      memory_.push_back(zeros(p.shape(), p.dtype(), p.device()));
    } else {
      memory_.push_back(zeros({window_, p.numel()}, p.dtype(), p.device()));
      window_sums_.push_back(zeros({p.numel()}, DType::Float64, p.device()));
    }
  }
}

void GrokfastFilter::filter() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    check(g.shape() == params_[i].shape() && g.dtype() == params_[i].dtype(), "grokfast: the "
          "gradient of parameter ", i, " is ", dtype_name(g.dtype()), " ", shape_str(g.shape()),
          ", not ", dtype_name(params_[i].dtype()), " ", shape_str(params_[i].shape()));
    if (kind_ == Kind::Ema) filter_ema(i, g);
    else filter_ma(i, g);
  }
  ++steps_;
}

void GrokfastFilter::filter_ema(size_t i, const Tensor& g) {
  Tensor mu = memory_[i];
  if (steps_ == 0) mu.copy_(g);  // mu_0 = g_0
  else mu.copy_(mu * alpha_ + g * (1 - alpha_));
  Tensor(g).copy_(g + mu * lamb_);
}

void GrokfastFilter::filter_ma(size_t i, const Tensor& g) {
  Tensor slot = memory_[i].select(0, steps_ % window_);  // [numel]: the oldest gradient, if full
  Tensor sum = window_sums_[i];                          // float64 [numel]
  const Tensor flat = g.reshape({-1});
  if (steps_ >= window_) sum.copy_(sum - slot.to(DType::Float64));
  slot.copy_(flat);
  sum.copy_(sum + flat.to(DType::Float64));
  if (steps_ + 1 < window_) return;  // the window is not full yet: g unchanged
  const Tensor mean = (sum / static_cast<double>(window_)).to(g.dtype());
  Tensor(g).copy_(g + mean.reshape(g.shape()) * lamb_);
}

std::vector<std::pair<std::string, Tensor>> GrokfastFilter::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  out.emplace_back("grokfast.steps", scalar(static_cast<double>(steps_), DType::Int64));
  const std::string prefix = kind_ == Kind::Ema ? "grokfast.ema." : "grokfast.ma.";
  for (size_t i = 0; i < memory_.size(); ++i)
    out.emplace_back(prefix + std::to_string(i), memory_[i]);
  for (size_t i = 0; i < window_sums_.size(); ++i)
    out.emplace_back("grokfast.ma_sum." + std::to_string(i), window_sums_[i]);
  return out;
}

void GrokfastFilter::load_state(const std::map<std::string, Tensor>& state) {
  const std::vector<std::pair<std::string, Tensor>> expected = this->state();
  std::set<std::string> names;
  for (const auto& [name, live] : expected) {
    names.insert(name);
    const auto found = state.find(name);
    check(found != state.end(), "grokfast: load_state: missing entry \"", name, "\"");
    const Tensor& t = found->second;
    if (!t.defined() || t.shape() != live.shape() || t.dtype() != live.dtype())
      throw Error(cat("grokfast: load_state: entry \"", name, "\" is ",
                      t.defined() ? cat(dtype_name(t.dtype()), " ", shape_str(t.shape()))
                                  : std::string("undefined"),
                      ", expected ", dtype_name(live.dtype()), " ", shape_str(live.shape())));
    check(name == "grokfast.steps" || t.device() == live.device(), "grokfast: load_state: entry \"",
          name, "\" is on ", t.device().str(), ", expected ", live.device().str());
  }
  for (const auto& [name, t] : state)
    check(names.count(name) != 0, "grokfast: load_state: unexpected entry \"", name, "\"");
  const int64_t steps = state.at("grokfast.steps").to(Device::cpu()).item<int64_t>();
  check(steps >= 0, "grokfast: load_state: \"grokfast.steps\" is negative (", steps, ")");

  NoGradGuard no_grad;
  for (size_t i = 1; i < expected.size(); ++i) {
    Tensor live = expected[i].second;  // shares the filter's storage
    live.copy_(state.at(expected[i].first));
  }
  steps_ = steps;
}

}  // namespace tg::optim
