// The results of a sweep: rows from summary.json, their JSON wire form, and results.csv.
#include "grok/sweep/results.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace tg::grok::sweep {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::vector<std::string>& result_columns() {
  static const std::vector<std::string> columns{"T_m",      "T_g",       "ratio",
                                                "steps",    "train_acc", "test_acc",
                                                "test_loss", "weight_norm", "wall_seconds"};
  return columns;
}

bool finished(const std::string& status) {
  return status == "completed" || status == "grokked" || status == "nan_loss";
}

RunResult read_run_result(size_t index, const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "summary.json").string();
  std::ifstream in(path);
  check(in.good(), path, ": missing");
  json summary;
  try {
    in >> summary;
  } catch (const json::exception&) {
    throw Error(cat(path, ": not valid JSON"));
  }
  check(summary.is_object() && summary.contains("status") && summary["status"].is_string(), path,
        ": not a run summary (no status)");
  RunResult result;
  result.index = index;
  result.status = summary["status"].get<std::string>();
  const json final = summary.value("final", json::object());
  for (const std::string& column : result_columns()) {
    const bool from_final = column == "train_acc" || column == "test_acc" ||
                            column == "test_loss" || column == "weight_norm";
    const json& source = from_final ? final : summary;
    // null (T_g not reached, a NaN loss written by JSON as null) stays an empty cell.
    if (source.contains(column) && source[column].is_number())
      result.values[column] = source[column];
  }
  return result;
}

std::string results_to_json(const std::vector<RunResult>& results) {
  json rows = json::array();
  for (const RunResult& r : results)
    rows.push_back({{"index", r.index}, {"status", r.status}, {"action", r.action},
                    {"values", r.values}});
  return rows.dump();
}

std::vector<RunResult> results_from_json(const std::string& text) {
  std::vector<RunResult> results;
  try {
    for (const json& row : json::parse(text)) {
      RunResult r;
      r.index = row.at("index").get<size_t>();
      r.status = row.at("status").get<std::string>();
      r.action = row.at("action").get<std::string>();
      r.values = row.at("values");
      results.push_back(std::move(r));
    }
  } catch (const json::exception& e) {
    throw Error(cat("sweep: a rank's results are not the JSON expected (", e.what(), ")"));
  }
  return results;
}

std::string csv_cell(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

void write_results_csv(const std::string& path, const SweepSpec& spec,
                       const std::vector<GridPoint>& points,
                       const std::vector<RunResult>& results) {
  check(results.size() == points.size(), "sweep: ", results.size(), " results for ",
        points.size(), " grid points");
  std::ofstream out(path);
  check(out.good(), "sweep: cannot write ", path);
  for (const GridAxis& axis : spec.grid) out << csv_cell(axis.key) << ',';
  out << "status";
  for (const std::string& column : result_columns()) out << ',' << column;
  out << '\n';
  for (size_t i = 0; i < points.size(); ++i) {
    for (size_t k = 0; k < spec.grid.size(); ++k)
      out << csv_cell(value_text(spec.grid[k].values[points[i].value_index[k]])) << ',';
    out << results[i].status;
    for (const std::string& column : result_columns()) {
      out << ',';
      if (results[i].values.contains(column)) out << results[i].values[column].dump();
    }
    out << '\n';
  }
  check(out.good(), "sweep: cannot write ", path);
}

}  // namespace tg::grok::sweep
