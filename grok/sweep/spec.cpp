// SweepSpec: reading a sweep's JSON file and checking every key and value against TrainConfig.
#include "grok/sweep/spec.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/strict_json.h"
#include "grok/config.h"

namespace tg::grok::sweep {

namespace {

std::string type_name(const ordered_json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  return "null";
}

// The type a field's value must have, from the field's value in config.json (to_json): what
// config_from_json reads without loss.
bool fits(const nlohmann::json& field_default, const ordered_json& v) {
  if (field_default.is_boolean()) return v.is_boolean();
  if (field_default.is_string()) return v.is_string();
  if (field_default.is_number_float()) return v.is_number();
  if (field_default.is_number_unsigned()) return v.is_number_unsigned();  // the seed: >= 0
  if (field_default.is_number_integer())  // a signed field: no unsigned value past INT64_MAX
    return v.is_number_integer() &&
           (!v.is_number_unsigned() ||
            v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  return false;
}

std::string expected_type(const nlohmann::json& field_default) {
  if (field_default.is_boolean()) return "true or false";
  if (field_default.is_string()) return "a string";
  if (field_default.is_number_float()) return "a number";
  if (field_default.is_number_unsigned()) return "a non-negative integer";
  return "an integer that int64 holds";
}

// Checks that `key` names a TrainConfig field the spec may set, and that `value` has its type.
void check_field(const std::string& where, const std::string& section, const std::string& key,
                 const ordered_json& value, const nlohmann::json& fields) {
  check(key != "preset", where, ": ", section, ".preset: the preset is the spec's top-level key "
        "\"preset\"");
  check(key != "threads", where, ": ", section, ".threads: threads per run are set by "
        "tinygrok sweep --threads");
  if (!fields.contains(key)) {
    std::string names;
    for (const auto& [name, _] : fields.items())
      if (name != "preset" && name != "threads") names += (names.empty() ? "" : ", ") + name;
    throw Error(cat(where, ": ", section, ".", key, ": unknown key (expected a TrainConfig field: ",
                    names, ")"));
  }
  const nlohmann::json& field_default = fields.at(key);
  check(fits(field_default, value), where, ": ", section, ".", key, ": must be ",
        expected_type(field_default), ", got ", type_name(value), " ", value.dump());
}

const ordered_json& object_at(const ordered_json& spec, const std::string& where,
                              const std::string& key) {
  const ordered_json& v = spec.at(key);
  check(v.is_object(), where, ": ", key, ": must be an object, got ", type_name(v));
  return v;
}

}  // namespace

SweepSpec parse_spec(const ordered_json& source, const std::string& where) {
  check(source.is_object(), where, ": must be a JSON object with \"grid\" (and \"preset\", "
        "\"base\", \"heatmap\")");
  for (const auto& [key, _] : source.items())
    check(key == "preset" || key == "base" || key == "grid" || key == "heatmap", where, ": ", key,
          ": unknown key (expected preset, base, grid, heatmap)");
  SweepSpec spec;
  spec.source = source;
  if (source.contains("preset")) {
    check(source["preset"].is_string(), where, ": preset: must be a string, got ",
          type_name(source["preset"]));
    spec.preset = source["preset"].get<std::string>();
  }
  nlohmann::json fields;
  try {
    fields = to_json(preset(spec.preset));
  } catch (const Error& e) {
    throw Error(cat(where, ": preset: ", e.what()));
  }

  if (source.contains("base")) {
    for (const auto& [key, value] : object_at(source, where, "base").items())
      check_field(where, "base", key, value, fields);
    spec.base = source["base"];
  }

  check(source.contains("grid"), where, ": grid: missing (an object of key: [values])");
  const ordered_json& grid = object_at(source, where, "grid");
  check(!grid.empty(), where, ": grid: is empty (give at least one key: [values])");
  for (const auto& [key, values] : grid.items()) {
    check(values.is_array(), where, ": grid.", key, ": must be a list of values, got ",
          type_name(values), " ", values.dump());
    check(!values.empty(), where, ": grid.", key, ": is an empty list");
    check(!spec.base.contains(key), where, ": grid.", key, ": is also in base (a key is either "
          "fixed or swept)");
    GridAxis axis{key, {}};
    for (const ordered_json& value : values) {
      check_field(where, "grid", key, value, fields);
      for (const ordered_json& seen : axis.values)
        check(seen != value, where, ": grid.", key, ": the value ", value.dump(), " is repeated");
      axis.values.push_back(value);
    }
    spec.grid.push_back(std::move(axis));
  }

  spec.heatmap_x = spec.grid[0].key;
  spec.heatmap_y = spec.grid.size() > 1 ? spec.grid[1].key : "";
  if (source.contains("heatmap")) {
    const ordered_json& heatmap = object_at(source, where, "heatmap");
    for (const auto& [key, value] : heatmap.items()) {
      check(key == "x" || key == "y", where, ": heatmap.", key, ": unknown key (expected x, y)");
      check(value.is_string(), where, ": heatmap.", key, ": must be a grid key (a string), got ",
            type_name(value));
      check(axis_index(spec, value.get<std::string>()) >= 0, where, ": heatmap.", key, ": '",
            value.get<std::string>(), "' is not a key of the grid");
    }
    check(heatmap.contains("x"), where, ": heatmap.x: missing (the grid key along x)");
    spec.heatmap_x = heatmap["x"].get<std::string>();
    spec.heatmap_y = heatmap.contains("y") ? heatmap["y"].get<std::string>() : "";
    check(spec.heatmap_x != spec.heatmap_y, where, ": heatmap.y: the same key as heatmap.x ('",
          spec.heatmap_x, "')");
  }
  return spec;
}

SweepSpec read_spec(const std::string& path) {
  check(!std::filesystem::is_directory(path), path, ": is a directory, not a sweep spec");
  std::ifstream in(path);
  check(in.good(), path, ": cannot read the sweep spec");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  // A key given twice in one object would silently keep the last: refused, as is anything after
  // the spec's object (the parser reads the whole text).
  ordered_json source;
  try {
    source = parse_json_refusing_repeated_keys<ordered_json>(text, path + ": ");
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat(path, ": not valid JSON (", e.what(), ")"));
  }
  return parse_spec(source, path);
}

int axis_index(const SweepSpec& spec, const std::string& key) {
  for (size_t i = 0; i < spec.grid.size(); ++i)
    if (spec.grid[i].key == key) return static_cast<int>(i);
  return -1;
}

}  // namespace tg::grok::sweep
