// The early-stopping study of the seed survey (§4.1): where a run would have been stopped by the
// usual patience rule on validation loss, and where by a weight-norm rule, read off metrics.csv.
// A grokking run is the case where the patience rule stops at the memorising network.
#pragma once

#include <cstdint>
#include <vector>

#include "grok/metrics.h"

namespace tg::grok::analysis {

// Where a stopping rule would have ended the run: the step, and the test accuracy the kept
// weights would have had there. step = -1 when the rule never fired within the run.
struct StopPoint {
  int64_t step = -1;
  double test_acc = 0;
};

// Patience on validation (test) loss, as Keras' EarlyStopping and most training scripts do it:
// stop at the first eval where the best test loss so far is at least `patience_steps` steps old
// (no improvement by more than `min_delta`). The weights kept are those of the best eval
// (restore_best_weights), so test_acc is the accuracy at that best eval.
StopPoint patience_stop(const std::vector<MetricsRow>& rows, int64_t patience_steps,
                        double min_delta = 0);

// The weight-norm rule: after memorisation (train accuracy >= 99%), keep training while the
// weight norm is still changing (weight decay compressing the network); stop at the first eval
// where ||theta|| has moved by less than `relative_drop` (relative, either way) over the last
// `window_steps` steps. test_acc is the accuracy there.
StopPoint weight_norm_stop(const std::vector<MetricsRow>& rows, int64_t window_steps,
                           double relative_drop = 0.01);

}  // namespace tg::grok::analysis
