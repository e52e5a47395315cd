// Running gnuplot on a script written beside its data: the run's curves, a sweep's heatmaps
// and the analyses' plots.
#pragma once

#include <string>

namespace tg::grok {

// Whether gnuplot is on the PATH.
bool gnuplot_available();

// Runs `gnuplot script` in directory dir, its output going to stderr, and returns whether it
// succeeded. No shell is involved: any directory name is safe, quotes included.
bool run_gnuplot(const std::string& dir, const std::string& script);

}  // namespace tg::grok
