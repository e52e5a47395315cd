// The phase diagram of a sweep: cells over the heatmap keys, medians over the rest, heatmap.csv.
#include "grok/sweep/phase_diagram.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include "core/error.h"

namespace tg::grok::sweep {

double median(std::vector<double> values) {
  check(!values.empty(), "median: no values");
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;  // inf stays inf
}

PhaseDiagram phase_diagram(const SweepSpec& spec, const std::vector<GridPoint>& points,
                           const std::vector<RunResult>& results) {
  check(results.size() == points.size(), "sweep: ", results.size(), " results for ",
        points.size(), " grid points");
  PhaseDiagram d;
  d.x_key = spec.heatmap_x;
  d.y_key = spec.heatmap_y;
  const int x_axis = axis_index(spec, d.x_key);
  const int y_axis = d.y_key.empty() ? -1 : axis_index(spec, d.y_key);
  check(x_axis >= 0 && (d.y_key.empty() || y_axis >= 0), "sweep: heatmap keys not in the grid");
  for (const ordered_json& v : spec.grid[x_axis].values) d.x_labels.push_back(value_text(v));
  if (y_axis >= 0)
    for (const ordered_json& v : spec.grid[y_axis].values) d.y_labels.push_back(value_text(v));
  else
    d.y_labels.push_back("");

  const size_t nx = d.x_labels.size(), ny = d.y_labels.size();
  std::vector<std::vector<double>> t_g(nx * ny), test_acc(nx * ny);
  d.cells.resize(nx * ny);
  for (size_t y = 0; y < ny; ++y)
    for (size_t x = 0; x < nx; ++x) {
      d.cells[y * nx + x].x = x;
      d.cells[y * nx + x].y = y;
    }
  for (size_t i = 0; i < points.size(); ++i) {
    const RunResult& r = results[i];
    if (!finished(r.status)) continue;
    const size_t x = points[i].value_index[x_axis];
    const size_t y = y_axis >= 0 ? points[i].value_index[y_axis] : 0;
    PhaseCell& cell = d.cells[y * nx + x];
    ++cell.runs;
    if (r.values.contains("T_g")) {
      ++cell.grokked;
      t_g[y * nx + x].push_back(r.values["T_g"].get<double>());
    } else {
      t_g[y * nx + x].push_back(std::numeric_limits<double>::infinity());
    }
    if (r.values.contains("test_acc"))
      test_acc[y * nx + x].push_back(r.values["test_acc"].get<double>());
  }
  for (size_t c = 0; c < d.cells.size(); ++c) {
    if (!t_g[c].empty() && std::isfinite(median(t_g[c]))) d.cells[c].t_g_median = median(t_g[c]);
    if (!test_acc[c].empty()) d.cells[c].test_acc_median = median(test_acc[c]);
  }
  return d;
}

void write_heatmap_csv(const std::string& path, const PhaseDiagram& d) {
  std::ofstream out(path);
  check(out.good(), "sweep: cannot write ", path);
  auto number = [](const std::optional<double>& v) {
    return v ? nlohmann::json(*v).dump() : std::string();
  };
  out << csv_cell(d.x_key) << ',';
  if (!d.y_key.empty()) out << csv_cell(d.y_key) << ',';
  out << "runs,grokked,T_g_median,test_acc_median\n";
  for (const PhaseCell& c : d.cells) {
    out << csv_cell(d.x_labels[c.x]) << ',';
    if (!d.y_key.empty()) out << csv_cell(d.y_labels[c.y]) << ',';
    out << c.runs << ',' << c.grokked << ',' << number(c.t_g_median) << ','
        << number(c.test_acc_median) << '\n';
  }
  check(out.good(), "sweep: cannot write ", path);
}

}  // namespace tg::grok::sweep
