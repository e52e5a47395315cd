// Plot: curves.gp (a gnuplot script beside the data) and curves.png drawn from metrics.csv.
#pragma once

#include <string>

namespace tg::grok {

// Writes run_dir/curves.gp and runs gnuplot on it to draw run_dir/curves.png: accuracy and loss
// against step on a log axis, and the weight norm in a second panel. Returns false (after
// printing why) when gnuplot is missing or fails; the script is kept either way. `quiet` drops
// gnuplot's own output (train --quiet).
bool plot_curves(const std::string& run_dir, bool quiet = false);

}  // namespace tg::grok
