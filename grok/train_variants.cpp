// The training variants around the optimiser step, and their checkpoint state.
#include "grok/train_variants.h"

#include <set>

#include "autograd/grad_mode.h"
#include "core/factories.h"
#include "optim/clip.h"
#include "optim/decay_toward.h"
#include "optim/orthogonal_grad.h"
#include "optim/weight_norm_control.h"

namespace tg::grok {

namespace {

constexpr const char* kStatePrefixes[] = {"grokfast.", "wd_target.", "weight_norm_constraint."};

bool is_variant_entry(const std::string& name) {
  for (const char* prefix : kStatePrefixes)
    if (name.rfind(prefix, 0) == 0) return true;
  return false;
}

// Copies saved[name] into `live` after checking it, or throws naming the entry.
void copy_entry(const std::string& name, Tensor live, const std::map<std::string, Tensor>& saved) {
  const auto found = saved.find(name);
  check(found != saved.end(), "missing entry \"", name, "\"");
  const Tensor& t = found->second;
  if (!t.defined() || t.shape() != live.shape() || t.dtype() != live.dtype()) {
    const std::string is =
        t.defined() ? cat(dtype_name(t.dtype()), " ", shape_str(t.shape())) : "undefined";
    throw Error(cat("entry \"", name, "\" is ", is, ", expected ", dtype_name(live.dtype()), " ",
                    shape_str(live.shape())));
  }
  NoGradGuard no_grad;
  live.copy_(t.to(live.device()));
}

}  // namespace

double optimizer_weight_decay(const TrainConfig& config) {
  return config.wd_target == "init" ? 0.0 : config.wd;
}

TrainVariants::TrainVariants(const TrainConfig& config, std::vector<Tensor> params)
    : params_(std::move(params)), orthogonal_grad_(config.orthogonal_grad) {
  if (config.grokfast != "none")
    grokfast_ = std::make_unique<optim::GrokfastFilter>(
        params_, config.grokfast == "ema" ? optim::GrokfastFilter::Kind::Ema
                                          : optim::GrokfastFilter::Kind::Ma,
        effective_grokfast_lamb(config), config.grokfast_alpha, config.grokfast_window);
  if (config.wd_target == "init") {
    for (const Tensor& p : params_) decay_targets_.push_back(p.detach().clone());
    weight_decay_ = config.wd;
    decoupled_decay_ = config.optimizer == "adamw";  // adam and sgd put decay into the gradient
  }
  if (config.weight_norm_constraint) norm_to_hold_ = optim::global_norm(params_);
}

void TrainVariants::filter_gradients() {
  if (grokfast_) grokfast_->filter();
  if (orthogonal_grad_) optim::orthogonalize_gradients(params_);
}

void TrainVariants::before_step(double lr) {
  if (decay_targets_.empty()) return;
  if (decoupled_decay_) optim::decay_toward(params_, decay_targets_, lr * weight_decay_);
  else optim::add_decay_toward_to_grad(params_, decay_targets_, weight_decay_);
}

void TrainVariants::after_step() {
  if (norm_to_hold_ >= 0) optim::constrain_weight_norm(params_, norm_to_hold_);
}

std::vector<std::pair<std::string, Tensor>> TrainVariants::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  if (grokfast_) out = grokfast_->state();
  for (size_t i = 0; i < decay_targets_.size(); ++i)
    out.emplace_back("wd_target." + std::to_string(i), decay_targets_[i]);
  if (norm_to_hold_ >= 0)
    out.emplace_back("weight_norm_constraint.norm", scalar(norm_to_hold_, DType::Float64));
  return out;
}

void TrainVariants::load_state(std::map<std::string, Tensor>& checkpoint_state) {
  std::map<std::string, Tensor> saved;
  for (auto it = checkpoint_state.begin(); it != checkpoint_state.end();) {
    if (!is_variant_entry(it->first)) {
      ++it;
      continue;
    }
    saved.insert(*it);
    it = checkpoint_state.erase(it);
  }
  std::set<std::string> expected;
  for (const auto& [name, t] : state()) expected.insert(name);
  for (const auto& [name, t] : saved)
    check(expected.count(name) != 0, "unexpected entry \"", name, "\" (a training variant this "
          "run does not use)");

  if (grokfast_) {
    std::map<std::string, Tensor> grokfast_state;
    for (const auto& [name, t] : saved)
      if (name.rfind("grokfast.", 0) == 0) grokfast_state.insert({name, t});
    grokfast_->load_state(grokfast_state);
  }
  for (size_t i = 0; i < decay_targets_.size(); ++i)
    copy_entry("wd_target." + std::to_string(i), decay_targets_[i], saved);
  if (norm_to_hold_ >= 0) {
    Tensor norm = scalar(0, DType::Float64);
    copy_entry("weight_norm_constraint.norm", norm, saved);
    norm_to_hold_ = norm.item();
  }
}

}  // namespace tg::grok
