// SweepSpec: the JSON file of a `tinygrok sweep` — the preset, the settings every run shares, the
// grid of values to cross, and the two grid keys of the phase diagrams — read and checked whole
// before any run starts, so that a typo fails in a second rather than after hours of runs.
//
//   {"preset": "default",
//    "base": {"steps": 4000, "stop_at_grok": true},
//    "grid": {"wd": [0.1, 0.3, 1.0], "frac": [0.3, 0.5], "seed": [0, 1, 2]},
//    "heatmap": {"x": "wd", "y": "frac"}}
//
// Keys of "base" and "grid" are TrainConfig's JSON field names (config.json's keys), except
// "preset" (the top-level key) and "threads" (tinygrok sweep --threads). The file is read as an
// ordered_json: the grid's keys keep the file's order, which fixes the order of the runs.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tg::grok::sweep {

using ordered_json = nlohmann::ordered_json;

struct GridAxis {
  std::string key;                   // a TrainConfig field, e.g. "wd"
  std::vector<ordered_json> values;  // as the file lists them, never empty
};

struct SweepSpec {
  std::string preset = "default";
  ordered_json base = ordered_json::object();  // field -> value for every run
  std::vector<GridAxis> grid;                  // in the file's order, at least one key
  std::string heatmap_x;                       // a grid key (default: the first)
  std::string heatmap_y;                       // another grid key (default: the second), or ""
  ordered_json source;                         // the spec as read: SWEEP_DIR/spec.json
};

// Checks and reads a spec. Errors (tg::Error) name `where` (the file) and the key at fault:
// unknown keys, empty or repeated grid values, values of the wrong type, heatmap axes that are
// not grid keys.
SweepSpec parse_spec(const ordered_json& spec, const std::string& where);

// Reads and parses the spec file at `path`.
SweepSpec read_spec(const std::string& path);

// The grid key index of `key`, or -1.
int axis_index(const SweepSpec& spec, const std::string& key);

}  // namespace tg::grok::sweep
