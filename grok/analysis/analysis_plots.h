// The analysis' figures: one gnuplot script per plot beside the CSV files it reads in
// RUN/analysis/ (re-run by hand with `cd RUN/analysis && gnuplot NAME.gp`), then gnuplot on each:
//   losses.png            train, test, restricted and excluded loss against step (log y)
//   fourier.png           the embedding's Fourier norms at the last step, key frequencies marked
//   weight_norm.png       ‖θ‖ with the fitted exponential, the ηλ line and observed/predicted T_g
//   sharpness.png         sharpness against step, test accuracy beside it
//   softmax_collapse.png  the collapse fraction against step, test accuracy beside it
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tg::grok::analysis {

// `analysis` is analysis.json's content (grok/analysis/run_analysis.h), for what to draw.
// Returns {"written": [png names]} or, when gnuplot is missing or fails, also a "note"; the
// scripts are written either way and the failure is printed, never thrown.
nlohmann::json plot_analysis(const std::string& analysis_dir, const nlohmann::json& analysis);

}  // namespace tg::grok::analysis
