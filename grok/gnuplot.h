// Running gnuplot on a script written beside its data: the run's curves, a sweep's heatmaps
// and the analyses' plots.
#pragma once

#include <string>

namespace tg::grok {

// Whether gnuplot is on the PATH.
bool gnuplot_available();

// Runs `gnuplot script` in directory dir, its output going to stderr (or nowhere, when not
// `show_output`: its warnings about a flat curve are noise to a quiet run), and returns whether
// it succeeded. No shell is involved: any directory name is safe, quotes included.
bool run_gnuplot(const std::string& dir, const std::string& script, bool show_output = true);

}  // namespace tg::grok
