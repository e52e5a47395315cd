// The analysis of a run directory (`tinygrok analyze RUN`): every snapshot of the model's
// weights (RUN/snapshots/, written by train --snapshot-every; the final checkpoint alone when
// there are none) through the analyses of grok/analysis/, with the outputs in RUN/analysis/:
//   analysis.csv      one row per snapshot: train/test loss and accuracy (recomputed),
//                     restricted and excluded loss, ‖θ‖, sharpness and its radius, the softmax
//                     collapse fraction, the number of key frequencies at that snapshot and the
//                     share of the embedding's energy in the (final) key frequencies
//   weight_norms.csv  one row per snapshot: ‖W‖ of every parameter, then the total
//   fourier.csv       the embedding's Fourier norm per frequency, for every snapshot
//   neurons.csv       each MLP neuron's frequency and cluster, at the last snapshot
//   analysis.json     key frequencies, cluster sizes, the §3.2 grokking-time prediction, where
//                     restricted and test loss cross 0.1, and the settings used
//   *.gp, *.png       one gnuplot script and plot per figure
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tg::grok::analysis {

struct AnalysisOptions {
  // Sharpness radius: an absolute ρ when set, else rho_fraction × ‖θ‖ of each snapshot (a radius
  // that scales with the weights, so that the shrinking norm alone does not move the measure).
  // 0.1% of ‖θ‖ is SAM's usual ρ = 0.05 at the nanda model's ‖θ‖ ≈ 50 and stays local: at 1%
  // the worst-case loss there already rises by tens of nats, at 5% by hundreds.
  std::optional<double> rho;
  double rho_fraction = 1e-3;
  int sharpness_steps = 5;
  std::vector<int64_t> key_frequencies;  // empty: found in the last snapshot's embedding
  int64_t every = 1;                     // every Nth snapshot, and always the last
  bool plots = true;
  bool quiet = false;  // no progress lines on stderr
};

// The loss level whose crossing the summary reports for restricted and test loss.
constexpr double kLossCrossing = 0.1;

// Runs the analysis, writes RUN/analysis/, and returns analysis.json's content. Errors (no
// config.json, an unreadable snapshot, a flag out of range) are tg::Error naming the file or flag.
nlohmann::json analyze_run(const std::string& run_dir, const AnalysisOptions& options);

// A few lines for people: key frequencies, predicted vs observed T_g, where restricted and test
// loss fell below 0.1.
std::string analysis_summary(const nlohmann::json& analysis);

}  // namespace tg::grok::analysis
