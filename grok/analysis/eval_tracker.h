// Per-eval tracking during training (`train --track sharpness,collapse,fourier`): the analyses
// cheap enough to run at every eval, on the live model, into RUN/analysis_track.csv — a finer
// time series than snapshots give, without storing weights. Tracking reads the model and puts
// it back exactly as it was (sharpness restores weights and gradients bit for bit), so a tracked
// run trains identically to an untracked one.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "grok/config.h"
#include "nn/model.h"

namespace tg::grok::analysis {

enum class TrackedMetric {
  Sharpness,  // sharpness,sharpness_rho: ρ = 0.1% of ‖θ‖ (run_analysis' default), train set
  Collapse,   // softmax_collapse_fraction over the train set
  Fourier,    // n_key_frequencies,effective_frequencies,top_frequency of the embedding
};

// "sharpness,collapse,fourier" (any subset, any order; "" = none). A tg::Error naming --track
// for an unknown name, a repeat, or fourier on s5 (not Z_p).
std::vector<TrackedMetric> parse_track(const std::string& list, const std::string& op);

class EvalTracker {
 public:
  // Starts path anew, or (resume) keeps its rows up to and including keep_through_step.
  EvalTracker(const std::string& path, const TrainConfig& config, int64_t p, bool resume,
              int64_t keep_through_step);
  ~EvalTracker();
  EvalTracker(const EvalTracker&) = delete;
  EvalTracker& operator=(const EvalTracker&) = delete;

  // Measures the model at `step` on the training set (on the model's device) and appends a row.
  void record(int64_t step, nn::Model& model, const Tensor& train_tokens,
              const Tensor& train_labels);

 private:
  std::vector<TrackedMetric> metrics_;
  TrainConfig config_;
  int64_t p_;
  std::FILE* file_ = nullptr;
};

}  // namespace tg::grok::analysis
