// The §3.2 exponential fit of the weight norm after memorisation, and its T_g prediction.
#include "grok/analysis/weight_norm_decay.h"

#include <cmath>

#include "core/error.h"

namespace tg::grok::analysis {

namespace {

const MetricsRow* row_at(const std::vector<MetricsRow>& rows, int64_t step) {
  for (const MetricsRow& r : rows)
    if (r.step == step) return &r;
  return nullptr;
}

// Least squares y = a + b·x; R² = 1 − SS_res / SS_tot (1 for a perfect fit of a flat series).
void fit_line(const std::vector<double>& x, const std::vector<double>& y, double& a, double& b,
              double& r_squared) {
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) mx += x[i] / n, my += y[i] / n;
  double sxx = 0, sxy = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    sxy += (x[i] - mx) * (y[i] - my);
    syy += (y[i] - my) * (y[i] - my);
  }
  b = sxx > 0 ? sxy / sxx : 0;
  a = my - b * mx;
  double residual = 0;
  for (size_t i = 0; i < x.size(); ++i) residual += std::pow(y[i] - (a + b * x[i]), 2);
  r_squared = syy > 0 ? 1 - residual / syy : (residual == 0 ? 1 : 0);
}

}  // namespace

GrokTimePrediction predict_grok_time(const std::vector<MetricsRow>& rows, int64_t t_m, int64_t t_g,
                                     double wd) {
  GrokTimePrediction out;
  out.t_m = t_m;
  out.t_g = t_g;
  const MetricsRow* at_m = t_m >= 0 ? row_at(rows, t_m) : nullptr;
  if (t_m < 0 || at_m == nullptr) {
    out.fit_note = out.prediction_note =
        t_m < 0 ? "the run never memorised (train accuracy never reached 99%)"
                : cat("metrics.csv has no row at T_m = ", t_m);
    return out;
  }
  out.norm_at_t_m = at_m->weight_norm;
  const MetricsRow* at_g = t_g >= 0 ? row_at(rows, t_g) : nullptr;
  if (at_g) out.norm_at_t_g = at_g->weight_norm;
  for (const MetricsRow& r : rows)
    if (r.step >= t_m && (t_g < 0 || r.step <= t_g) && r.weight_norm > out.peak_norm) {
      out.peak_norm = r.weight_norm;
      out.peak_step = r.step;
    }

  // The window: from T_m, the first 20% of the rest of the run or until a 10% fall, before T_g.
  const int64_t last_step = rows.empty() ? t_m : rows.back().step;
  const double limit = static_cast<double>(t_m) + kFitWindowFraction * (last_step - t_m);
  std::vector<double> steps, log_norms;
  double lr_sum = 0;
  for (const MetricsRow& r : rows) {
    if (r.step < t_m || static_cast<double>(r.step) > limit || (t_g >= 0 && r.step >= t_g))
      continue;
    if (!(r.weight_norm > 0)) continue;
    steps.push_back(static_cast<double>(r.step));
    log_norms.push_back(std::log(r.weight_norm));
    lr_sum += r.lr;
    if (r.weight_norm <= (1 - kFitWindowNormDrop) * out.norm_at_t_m) break;
  }
  out.window_evals = static_cast<int64_t>(steps.size());
  out.rate_theory = wd * (steps.empty() ? at_m->lr : lr_sum / static_cast<double>(steps.size()));
  if (out.window_evals >= kFitWindowMinEvals) {
    double slope = 0;
    fit_line(steps, log_norms, out.intercept, slope, out.r_squared);
    out.rate_fit = -slope;
    out.fitted = true;
    out.window_begin = static_cast<int64_t>(steps.front());
    out.window_end = static_cast<int64_t>(steps.back());
  } else {
    out.fit_note = cat("only ", out.window_evals,
                       " evals between T_m and the end of the fit "
                       "window (",
                       kFitWindowMinEvals, " needed): evaluate more often");
  }

  // The predictions.
  if (t_g < 0 || at_g == nullptr) {
    out.prediction_note =
        t_g < 0 ? "the run never generalised (test accuracy never reached 99%), so the critical "
                  "norm ||theta_c|| is unknown"
                : cat("metrics.csv has no row at T_g = ", t_g);
    return out;
  }
  if (!(out.norm_at_t_g < out.norm_at_t_m)) {
    out.prediction_note =
        cat("||theta|| at T_g (", out.norm_at_t_g,
            ") is not below ||theta|| at "
            "T_m (",
            out.norm_at_t_m,
            "): the norm did not shrink between "
            "memorisation and generalisation, so the decay law predicts no delay");
    return out;
  }
  const double log_ratio = std::log(out.norm_at_t_m / out.norm_at_t_g);
  const double observed = static_cast<double>(t_g - t_m);
  out.rate_mean_between = log_ratio / observed;
  std::vector<double> all_steps, all_log_norms;
  for (const MetricsRow& r : rows)
    if (r.step >= t_m && r.step <= t_g && r.weight_norm > 0) {
      all_steps.push_back(static_cast<double>(r.step));
      all_log_norms.push_back(std::log(r.weight_norm));
    }
  if (all_steps.size() >= static_cast<size_t>(kFitWindowMinEvals)) {
    double intercept = 0, slope = 0;
    fit_line(all_steps, all_log_norms, intercept, slope, out.r_squared_between);
    out.rate_between = -slope;
    out.fitted_between = true;
  }
  auto relative_error = [&](double predicted) {  // observed > 0: the norm fell in between
    return std::abs(predicted - static_cast<double>(t_g)) / observed;
  };
  if (out.rate_theory > 0) {
    out.predicted_t_g_theory = static_cast<double>(t_m) + log_ratio / out.rate_theory;
    out.relative_error_theory = relative_error(*out.predicted_t_g_theory);
  } else {
    out.prediction_note = "lr x weight decay is 0: the theory predicts no decay. ";
  }
  if (out.fitted && out.rate_fit > 0) {
    out.predicted_t_g_fit = static_cast<double>(t_m) + log_ratio / out.rate_fit;
    out.relative_error_fit = relative_error(*out.predicted_t_g_fit);
  } else if (out.fitted) {
    out.prediction_note += cat("the norm does not decay in the fit window (fitted rate ",
                               out.rate_fit, "), so the fit predicts nothing");
  } else {
    out.prediction_note += out.fit_note;
  }
  return out;
}

}  // namespace tg::grok::analysis
