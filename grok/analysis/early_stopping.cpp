// Stopping rules replayed over a run's metrics rows (one row per eval, in step order).
#include "grok/analysis/early_stopping.h"

#include <cmath>

#include "core/error.h"

namespace tg::grok::analysis {

namespace {
void check_rows(const char* rule, const std::vector<MetricsRow>& rows, int64_t steps) {
  check(steps > 0, rule, ": the window must be a positive number of steps, got ", steps);
  for (size_t i = 1; i < rows.size(); ++i)
    check(rows[i].step > rows[i - 1].step, rule, ": metrics rows must be in increasing step "
          "order (row ", i, " has step ", rows[i].step, " after ", rows[i - 1].step, ")");
}
}  // namespace

StopPoint patience_stop(const std::vector<MetricsRow>& rows, int64_t patience_steps,
                        double min_delta) {
  check_rows("patience_stop", rows, patience_steps);
  size_t best = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].test_loss < rows[best].test_loss - min_delta) best = i;
    if (rows[i].step - rows[best].step >= patience_steps) return {rows[i].step, rows[best].test_acc};
  }
  return {};
}

StopPoint weight_norm_stop(const std::vector<MetricsRow>& rows, int64_t window_steps,
                           double relative_drop) {
  check_rows("weight_norm_stop", rows, window_steps);
  size_t memorised = rows.size();
  for (size_t i = 0; i < rows.size() && memorised == rows.size(); ++i)
    if (rows[i].train_acc >= 0.99) memorised = i;
  // Compare each eval with the last eval at least window_steps before it, after memorisation.
  size_t back = memorised;
  for (size_t i = memorised; i < rows.size(); ++i) {
    while (back + 1 < i && rows[i].step - rows[back + 1].step >= window_steps) ++back;
    if (rows[i].step - rows[back].step < window_steps) continue;
    // A norm still moving either way is not settled (some runs grow it after memorising).
    const double change = (rows[i].weight_norm - rows[back].weight_norm) / rows[back].weight_norm;
    if (std::fabs(change) < relative_drop) return {rows[i].step, rows[i].test_acc};
  }
  return {};
}

}  // namespace tg::grok::analysis
