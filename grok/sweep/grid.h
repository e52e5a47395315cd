// The grid of a sweep: every combination of the grid's values as one run — its place in the
// order, its run directory's name, its full configuration, and the `tinygrok train` flags that
// give that configuration.
//
// Order: the Cartesian product with the grid's keys in the spec file's order, the first key
// outermost and the last varying fastest (nested loops in the order the keys are written). For
// {"wd": [0.1, 1], "seed": [0, 1]}: wd=0.1,seed=0; wd=0.1,seed=1; wd=1,seed=0; wd=1,seed=1.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "grok/config.h"
#include "grok/sweep/spec.h"

namespace tg::grok::sweep {

struct GridPoint {
  size_t index = 0;                 // place in the grid's order
  std::vector<size_t> value_index;  // per grid key, which of its values
  std::string name;                 // run directory name, e.g. "wd=0.3,frac=0.5,seed=1"
  TrainConfig config;               // preset + base + this point's values (+ the sweep's threads)
};

// Every point of the grid, in order, each configuration checked with grok::validate (errors name
// `where`, the point and the flag). `threads` is each run's --threads.
std::vector<GridPoint> expand_grid(const SweepSpec& spec, int threads, const std::string& where);

// A value as the command line and file names write it: strings bare, numbers as JSON writes them
// (shortest form that reads back exactly: 0.1, 1e-05), booleans true/false.
std::string value_text(const ordered_json& value);

// The run directory name of a point: key=value joined by commas in grid order, any character
// other than letters, digits and . _ + - = , replaced by '_' (file-system safe everywhere).
std::string run_name(const SweepSpec& spec, const std::vector<size_t>& value_index);

// The `tinygrok train` flag of a config field: "--" and the field with dashes for underscores
// (stop_at_grok -> --stop-at-grok), except split_file -> --split and beta1, beta2 -> --betas.
std::string train_flag(const std::string& field);

// Why a run of this configuration ignores `field`: its flag's reason (why_flag_has_no_effect), or
// beta2 under sgd, whose --betas is read for its first value only (the momentum). "" when the
// field has an effect.
std::string why_field_has_no_effect(const TrainConfig& config, const std::string& field);

// The arguments after `tinygrok train` that start this point's run (without --out, --force or
// --quiet): --preset, then every base and grid key as its flag with the point's value, then
// --threads. Booleans are flags (--stop-at-grok, or --stop-at-grok=false).
std::vector<std::string> train_arguments(const SweepSpec& spec, const GridPoint& point);

}  // namespace tg::grok::sweep
