// The phase diagram of a sweep: its runs gathered into cells over the two heatmap keys (say wd
// along x, frac along y), each cell aggregated over the grid's other keys (say the seeds) by the
// median, and written as SWEEP_DIR/heatmap.csv.
//
// Steps to grok: the median of T_g where a run that did not grok counts as never (+infinity), so
// a cell is "did not grok" when at least half of its runs did not (for an even count, the median
// is the mean of the middle two, never when either is). Final test accuracy: the plain median.
// Only finished runs (completed, grokked, nan_loss) count; failed or unfinished ones are left out.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "grok/sweep/grid.h"
#include "grok/sweep/results.h"
#include "grok/sweep/spec.h"

namespace tg::grok::sweep {

struct PhaseCell {
  size_t x = 0, y = 0;  // value indices along the heatmap keys (y = 0 without a y key)
  int runs = 0;         // finished runs in the cell
  int grokked = 0;      // of them, those with a T_g
  std::optional<double> t_g_median;       // absent when the median run did not grok, or no runs
  std::optional<double> test_acc_median;  // absent when no run has one
};

struct PhaseDiagram {
  std::string x_key, y_key;                    // y_key "" for a one-key heatmap (one row)
  std::vector<std::string> x_labels, y_labels;  // the values as text; one "" label without y
  std::vector<PhaseCell> cells;                 // row by row: cells[y * x_labels.size() + x]
  const PhaseCell& at(size_t x, size_t y) const { return cells[y * x_labels.size() + x]; }
};

PhaseDiagram phase_diagram(const SweepSpec& spec, const std::vector<GridPoint>& points,
                           const std::vector<RunResult>& results);

// The median of `values` (+infinity allowed): the middle value, or the mean of the middle two.
double median(std::vector<double> values);

// heatmap.csv: one row per cell (x fastest): the x key, the y key, runs, grokked, T_g_median
// (empty when the cell did not grok), test_acc_median.
void write_heatmap_csv(const std::string& path, const PhaseDiagram& diagram);

}  // namespace tg::grok::sweep
