// The results of a sweep: one row per run, read from the run's summary.json, sent between MPI
// ranks as JSON, and written as SWEEP_DIR/results.csv in grid order.
//
// results.csv: the grid keys (values as the spec writes them), then status, T_m, T_g, ratio,
// steps, train_acc, test_acc, test_loss, weight_norm (the last eval's), wall_seconds. Numbers are
// written as JSON writes them (shortest form that reads back exactly); a cell is empty where the
// run has no such value (T_g of a run that did not grok, every value of a failed run).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grok/sweep/grid.h"
#include "grok/sweep/spec.h"

namespace tg::grok::sweep {

struct RunResult {
  size_t index = 0;  // the grid point's
  // completed, grokked or nan_loss (a finished run); failed, interrupted, or not_run.
  std::string status = "not_run";
  // What the sweep did this time: skipped (finished before), started, resumed (from its
  // checkpoint), redone (a partial or different run replaced), kept (a run beside a config.json
  // that cannot be read: left alone, status failed), or "" (not run).
  std::string action;
  nlohmann::json values = nlohmann::json::object();  // column -> number (or absent: empty cell)
};

// The columns of results.csv after the grid keys, status excluded (the keys of `values`).
const std::vector<std::string>& result_columns();

// A status of a run that ended by itself (completed, grokked, nan_loss): its results count.
bool finished(const std::string& status);

// The result of the run in `run_dir` from its summary.json: status and the columns. Throws
// tg::Error naming the file when it is missing or not a summary.
RunResult read_run_result(size_t index, const std::string& run_dir);

// The wire form between MPI ranks: a JSON array of results, and back.
std::string results_to_json(const std::vector<RunResult>& results);
std::vector<RunResult> results_from_json(const std::string& text);

// results.csv: a row per grid point in grid order. `results[i]` is point i's.
void write_results_csv(const std::string& path, const SweepSpec& spec,
                       const std::vector<GridPoint>& points, const std::vector<RunResult>& results);

// A CSV cell: quoted (with doubled quotes) when it holds a comma, quote or line break.
std::string csv_cell(const std::string& text);

}  // namespace tg::grok::sweep
