// Grokfast (Lee et al. 2024): amplify the slow component of the gradients. Called between
// backward and the optimiser step, it rewrites each parameter's gradient g in place:
//   EMA: mu_0 = g_0, mu_t = alpha mu_{t-1} + (1 - alpha) g_t;    g <- g + lamb mu_t
//   MA:  g <- g + lamb * mean of the last `window` gradients (this one included) once `window`
//        gradients have been seen; before that, g is left unchanged.
// The filter's memory (the EMA, or the window of past gradients) is state, listed by state() for
// checkpoints so that a resumed run continues exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace tg::optim {

class GrokfastFilter {
 public:
  enum class Kind { Ema, Ma };
  // The defaults of the paper (REFERENCE §2): EMA alpha 0.98, lamb 2; MA window 100, lamb 5.
  static constexpr double kDefaultAlpha = 0.98, kDefaultEmaLamb = 2.0, kDefaultMaLamb = 5.0;
  static constexpr int64_t kDefaultWindow = 100;

  // params: the model's parameters (shared handles, as the optimiser holds them). alpha is used
  // by EMA, window by MA.
  GrokfastFilter(std::vector<Tensor> params, Kind kind, double lamb, double alpha = kDefaultAlpha,
                 int64_t window = kDefaultWindow);

  // Filters every defined gradient in place. The filter counts one call per step and expects a
  // gradient for every parameter: a parameter without one (skipped by the optimiser too) does not
  // update its memory.
  void filter();

  // "grokfast.steps" (int64 [], the calls so far), then per parameter i "grokfast.ema.<i>"
  // (EMA, shaped like the parameter), or for MA "grokfast.ma.<i>" ([window, numel], a ring
  // buffer: the gradient of call t sits in row t % window) and "grokfast.ma_sum.<i>" (float64
  // [numel], the sum of the rows). The buffers are live tensors, not copies.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Copies a state() map back. Every name must be there with its shape, dtype and device, and no
  // other name; otherwise a tg::Error names the entry and nothing changes.
  void load_state(const std::map<std::string, Tensor>& state);

  Kind kind() const { return kind_; }
  int64_t steps() const { return steps_; }

 private:
  void filter_ema(size_t i, const Tensor& g);
  void filter_ma(size_t i, const Tensor& g);

  std::vector<Tensor> params_;
  Kind kind_;
  double lamb_, alpha_;
  int64_t window_;
  int64_t steps_ = 0;
  std::vector<Tensor> memory_;  // per parameter: the EMA, or the MA's ring buffer
  // MA: per parameter, the running sum of its ring buffer in float64, so that a step costs
  // O(numel) rather than O(window * numel) (summing 100 rows each step doubled a step's time).
  std::vector<Tensor> window_sums_;
};

}  // namespace tg::optim
