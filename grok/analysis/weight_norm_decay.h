// The seed survey's §3.2 prediction of the grokking time from weight decay. After memorisation
// the loss gradient is ~0, so decoupled weight decay shrinks the weights geometrically,
// ‖θ_t‖ ≈ ‖θ_Tm‖·exp(−r(t − T_m)) with r = ηλ (lr × weight decay), and generalisation comes when
// the norm reaches a critical ‖θ_c‖:
//   T_g − T_m ≈ ln(‖θ_Tm‖ / ‖θ_c‖) / r.
// Here r is measured — a least-squares fit of ln‖θ_t‖ = c − r·t on an early window of evals
// after T_m — and also taken from the theory (ηλ); ‖θ_c‖ is the norm at T_g (the first eval at
// test accuracy ≥ 99%, as REFERENCE §2 defines it); the predicted T_g is compared with the
// observed one.
//
// The fit window never reaches T_g, so the fitted rate does not know it: it starts at T_m and
// takes the evals up to the first of
//   - kFitWindowFraction (20%) of the way from T_m to the run's last eval,
//   - the first eval where the norm is kFitWindowNormDrop (10%) below ‖θ_Tm‖ (included),
// keeping only evals before T_g; it needs kFitWindowMinEvals evals.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "grok/metrics.h"

namespace tg::grok::analysis {

constexpr double kFitWindowFraction = 0.2;
constexpr double kFitWindowNormDrop = 0.1;
constexpr int64_t kFitWindowMinEvals = 3;

struct GrokTimePrediction {
  // Observed: T_m and T_g (-1: not reached), ‖θ‖ at T_m and at T_g, the decay rate of theory.
  int64_t t_m = -1, t_g = -1;
  double norm_at_t_m = 0, norm_at_t_g = 0;
  double rate_theory = 0;  // ηλ: weight decay times the mean lr over the fit window
  // The largest norm after T_m and its step: where the norm stops growing, if it grew.
  int64_t peak_step = -1;
  double peak_norm = 0;

  // The fit: ln‖θ_t‖ ≈ intercept − rate·t over the window [window_begin, window_end].
  bool fitted = false;
  std::string fit_note;  // why there is no fit, when there is none
  int64_t window_begin = -1, window_end = -1, window_evals = 0;
  double rate_fit = 0, intercept = 0, r_squared = 0;

  // Description, not prediction: the fit over every eval from T_m to T_g (needs both), to judge
  // how exponential the decay was, and the mean rate ln(‖θ_Tm‖/‖θ_Tg‖)/(T_g − T_m) that would
  // make the law exact, to compare with ηλ.
  bool fitted_between = false;
  double rate_between = 0, r_squared_between = 0, rate_mean_between = 0;

  // The predictions of T_g — from the fitted rate and from ηλ — and their relative errors
  // |predicted − observed| / (observed − T_m), each missing when it cannot be made.
  std::optional<double> predicted_t_g_fit, predicted_t_g_theory;
  std::optional<double> relative_error_fit, relative_error_theory;
  std::string prediction_note;  // why a prediction is missing
};

// rows: metrics.csv (steps ascending). t_m, t_g: summary.json's (-1 when the run did not get
// there); wd: the weight-decay coefficient; the lr comes from the rows' lr column.
GrokTimePrediction predict_grok_time(const std::vector<MetricsRow>& rows, int64_t t_m, int64_t t_g,
                                     double wd);

}  // namespace tg::grok::analysis
