// The runs of a sweep as child processes: `tinygrok train` once per grid point, at most `workers`
// at a time, each in its own run directory SWEEP_DIR/runs/NAME with its stderr in NAME/train.log.
// A run that finished before is skipped and an interrupted one resumed from its checkpoint, so
// running a sweep again after Ctrl-C (or a crash) finishes the grid. A run directory that another
// process holds (grok/run_lock.h: a run still stopping after its sweep was killed, or another
// sweep's) waits until it is free.
#pragma once

#include <string>
#include <vector>

#include "grok/config.h"
#include "grok/sweep/grid.h"
#include "grok/sweep/results.h"
#include "grok/sweep/spec.h"

namespace tg::grok::sweep {

enum class RunAction {
  Skip,    // a finished run (summary.json: completed, grokked or nan_loss) of this configuration
  Resume,  // a checkpoint of this configuration without a finished summary: train --resume
  Start,   // no run directory yet: train --out
  Redo,    // anything else (a partial run, another configuration): train --out --force
  Damaged,  // a checkpoint or a finished summary beside a config.json that is missing or cannot
            // be read: left alone, and the point fails (its work is not thrown away)
};

// What to do with the run directory of a point whose configuration is `config`. Configurations
// are compared as config.json holds them, except threads (a sweep may change --threads).
RunAction plan_run(const std::string& run_dir, const TrainConfig& config);

struct RunnerOptions {
  std::string program;  // the tinygrok executable the children run
  int workers = 1;      // runs at once
  std::string prefix;   // before each progress line (the MPI rank)
};

// Runs `points` (the grid or one MPI rank's share of it) into runs_dir and returns their
// results in the same order. A run that fails (exit code other than 0, or 3 with a nan_loss
// summary) is reported with the end of its log and the others go on. SIGINT or SIGTERM (Ctrl-C)
// passes SIGINT on to the running children, which write a checkpoint and stop; no further run
// starts, and *interrupted becomes true.
std::vector<RunResult> run_points(const SweepSpec& spec, const std::vector<GridPoint>& points,
                                  const std::string& runs_dir, const RunnerOptions& options,
                                  bool* interrupted);

}  // namespace tg::grok::sweep
