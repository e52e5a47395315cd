// The sweep directory: SWEEP_DIR/spec.json (a copy of the spec it holds the runs of),
// SWEEP_DIR/runs/NAME (a run directory per grid point), results.csv, heatmap.csv and the phase
// diagrams. One directory holds one spec's sweep: rerunning the same spec there resumes it.
#pragma once

#include <string>

#include "grok/sweep/spec.h"

namespace tg::grok::sweep {

// Throws tg::Error (naming --out) unless `dir` is absent, empty, or a sweep of this same spec.
// With `force` another spec's sweep (or any directory) is accepted: its runs of the same
// configuration are kept, the others redone.
void check_sweep_dir(const std::string& dir, const SweepSpec& spec, bool force);

// Writes dir/spec.json (through a temporary file named by `writer`, then a rename: MPI ranks
// sharing a file system may write it at once, with the same text).
void write_spec_copy(const std::string& dir, const SweepSpec& spec, const std::string& writer);

// SWEEP_DIR/runs, where the run directories are.
std::string runs_dir(const std::string& dir);

}  // namespace tg::grok::sweep
