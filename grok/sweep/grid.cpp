// The grid of a sweep: its points in order, their names, configurations and train flags.
#include "grok/sweep/grid.h"

#include <algorithm>
#include <set>

#include "core/error.h"

namespace tg::grok::sweep {

namespace {

// A grid of more points than this is surely a mistake (a run each, hours each).
constexpr size_t kMaxPoints = 100000;

nlohmann::json plain(const ordered_json& value) { return nlohmann::json::parse(value.dump()); }

}  // namespace

std::string value_text(const ordered_json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

std::string run_name(const SweepSpec& spec, const std::vector<size_t>& value_index) {
  std::string name;
  for (size_t k = 0; k < spec.grid.size(); ++k) {
    if (k) name += ',';
    name += spec.grid[k].key + "=" + value_text(spec.grid[k].values[value_index[k]]);
  }
  for (char& c : name) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '+' || c == '-' || c == '=' || c == ',';
    if (!safe) c = '_';
  }
  return name;
}

std::string train_flag(const std::string& field) {
  if (field == "split_file") return "--split";
  if (field == "beta1" || field == "beta2") return "--betas";
  std::string flag = "--" + field;
  for (char& c : flag)
    if (c == '_') c = '-';
  return flag;
}

std::string why_field_has_no_effect(const TrainConfig& config, const std::string& field) {
  if (field == "beta2" && config.optimizer == "sgd") return "with --optimizer sgd (its momentum "
                                                            "is beta1)";
  return why_flag_has_no_effect(config, train_flag(field));
}

std::vector<GridPoint> expand_grid(const SweepSpec& spec, int threads, const std::string& where) {
  size_t count = 1;
  for (const GridAxis& axis : spec.grid) {
    count *= axis.values.size();
    check(count <= kMaxPoints, where, ": grid: more than ", kMaxPoints, " points");
  }
  const nlohmann::json preset_fields = to_json(preset(spec.preset));
  nlohmann::json start = preset_fields;
  for (const auto& [key, value] : spec.base.items()) start[key] = plain(value);

  std::vector<GridPoint> points;
  std::set<std::string> names;
  std::vector<size_t> value_index(spec.grid.size(), 0);
  for (size_t i = 0; i < count; ++i) {
    GridPoint point;
    point.index = i;
    point.value_index = value_index;
    point.name = run_name(spec, value_index);
    check(point.name.size() <= 200, where, ": grid: the run directory name '", point.name,
          "' is too long (over 200 characters); use shorter values or fewer keys");
    check(names.insert(point.name).second, where, ": grid: two points would share the run "
          "directory '", point.name, "' (their values differ only in characters other than "
          "letters, digits and . _ + - = ,)");
    nlohmann::json fields = start;
    for (size_t k = 0; k < spec.grid.size(); ++k)
      fields[spec.grid[k].key] = plain(spec.grid[k].values[value_index[k]]);
    try {
      point.config = config_from_json(fields);
      // A field this point's run ignores keeps the preset's value, as its train (which is not
      // given that flag) records it: --layers in a spec copied from an mlp run's config.json.
      bool reset = false;
      for (auto field : fields.items())
        if (!why_field_has_no_effect(point.config, field.key()).empty() &&
            field.value() != preset_fields[field.key()]) {
          field.value() = preset_fields[field.key()];
          reset = true;
        }
      if (reset) point.config = config_from_json(fields);
      point.config.threads = threads;
      validate(point.config);
    } catch (const Error& e) {
      throw Error(cat(where, ": grid point ", point.name, ": ", e.what()));
    }
    points.push_back(std::move(point));
    // The next combination: the last key fastest, like an odometer.
    for (size_t k = spec.grid.size(); k-- > 0;) {
      if (++value_index[k] < spec.grid[k].values.size()) break;
      value_index[k] = 0;
    }
  }
  // An axis no point's run reads is surely a mistake: every value would train the same model.
  for (const GridAxis& axis : spec.grid) {
    if (points.empty()) break;
    const std::string why = why_field_has_no_effect(points.front().config, axis.key);
    const bool read_somewhere = std::any_of(points.begin(), points.end(), [&](const GridPoint& p) {
      return why_field_has_no_effect(p.config, axis.key).empty();
    });
    check(read_somewhere, where, ": grid: '", axis.key, "' (", train_flag(axis.key),
          ") has no effect ", why);
  }
  return points;
}

std::vector<std::string> train_arguments(const SweepSpec& spec, const GridPoint& point) {
  const ordered_json config = ordered_json::parse(to_json(point.config).dump());
  std::vector<std::string> args{"--preset", spec.preset};
  bool betas_given = false;
  auto add = [&](const std::string& key) {
    const std::string flag = train_flag(key);
    // A field this point ignores (a spec based on an mlp run's config.json sets --layers too) is
    // left out: train refuses a flag that has no effect.
    if (!why_field_has_no_effect(point.config, key).empty()) return;
    if (flag == "--betas") {
      if (betas_given) return;  // one --betas carries both
      betas_given = true;
      args.insert(args.end(), {flag, value_text(config["beta1"]), value_text(config["beta2"])});
    } else if (config[key].is_boolean()) {
      args.push_back(config[key].get<bool>() ? flag : flag + "=false");
    } else {
      args.insert(args.end(), {flag, value_text(config[key])});
    }
  };
  for (const auto& [key, _] : spec.base.items()) add(key);
  for (const GridAxis& axis : spec.grid) add(axis.key);
  args.insert(args.end(), {"--threads", std::to_string(point.config.threads)});
  return args;
}

}  // namespace tg::grok::sweep
