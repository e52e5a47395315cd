// The phase diagrams of a sweep as pictures: SWEEP_DIR/heatmap.gp (a gnuplot script holding its
// data) drawn into heatmap_T_g.png (median steps to grok; cells that did not grok in grey) and
// heatmap_test_acc.png (median final test accuracy). A one-key heatmap is a single row.
#pragma once

#include <cstdint>
#include <string>

#include "grok/sweep/phase_diagram.h"

namespace tg::grok::sweep {

// Writes sweep_dir/heatmap.gp and runs gnuplot on it. `over` names what each cell's median is
// taken over (e.g. "seed"; "" for one run per cell); `step_budget` is the runs' --steps (the
// largest, if they differ), which "did not grok" means "within". Returns false (after printing
// why) when gnuplot is missing or fails; the script is kept either way.
bool plot_heatmaps(const std::string& sweep_dir, const PhaseDiagram& diagram,
                   const std::string& over, int64_t step_budget);

}  // namespace tg::grok::sweep
