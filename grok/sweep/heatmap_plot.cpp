// The phase diagrams of a sweep: the gnuplot script with its data inline, and running it.
#include "grok/sweep/heatmap_plot.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include "grok/gnuplot.h"

namespace tg::grok::sweep {

namespace {

// Text inside gnuplot's quotes: the quote characters themselves would end it.
std::string quoted(std::string text, char quote) {
  std::replace(text.begin(), text.end(), quote, quote == '"' ? '\'' : '"');
  return std::string(1, quote) + text + quote;
}

std::string number(double v, const char* format) {
  char text[32];
  std::snprintf(text, sizeof text, format, v);
  return text;
}

std::string grokked_note(const PhaseCell& c) {
  return c.grokked > 0 && c.grokked < c.runs
             ? " (" + std::to_string(c.grokked) + "/" + std::to_string(c.runs) + " grokked)"
             : "";
}

// One data block: x index, y index, value (NaN: not coloured), label, kind (0 value, 1 did not
// grok, 2 no finished runs).
std::string data_block(const std::string& name, const PhaseDiagram& d, bool steps_to_grok) {
  std::ostringstream out;
  out << name << " << EOD\n";
  for (const PhaseCell& c : d.cells) {
    const std::optional<double>& value = steps_to_grok ? c.t_g_median : c.test_acc_median;
    std::string label;
    int kind = 0;
    if (c.runs == 0) {
      label = "no runs";
      kind = 2;
    } else if (!value) {
      label = steps_to_grok ? "did not grok" : "n/a";
      kind = steps_to_grok ? 1 : 2;
    } else {
      label = steps_to_grok ? number(*value, "%.0f") : number(*value, "%.3f");
    }
    if (steps_to_grok) label += grokked_note(c);
    out << c.x << ' ' << c.y << ' ' << (value ? number(*value, "%.17g") : "NaN") << ' '
        << quoted(label, '"') << ' ' << kind << '\n';
  }
  out << "EOD\n";
  return out.str();
}

std::string tics(const char* axis, const std::vector<std::string>& labels) {
  std::string line = std::string("set ") + axis + "tics (";
  for (size_t i = 0; i < labels.size(); ++i)
    line += (i ? ", " : "") + quoted(labels[i], '\'') + " " + std::to_string(i);
  return line + ")\n";
}

}  // namespace

bool plot_heatmaps(const std::string& sweep_dir, const PhaseDiagram& d, const std::string& over,
                   int64_t step_budget) {
  const size_t nx = d.x_labels.size(), ny = d.y_labels.size();
  const size_t width = std::min<size_t>(1600, 300 + 150 * nx);
  const size_t height = std::min<size_t>(1200, (d.y_key.empty() ? 220 : 200) + 100 * ny);
  const std::string median_note = over.empty() ? "" : ", median over " + over;
  bool any_accuracy = false;
  std::optional<double> fastest, slowest;  // the grokked cells' T_g
  for (const PhaseCell& c : d.cells) {
    any_accuracy |= c.test_acc_median.has_value();
    if (!c.t_g_median) continue;
    fastest = std::min(fastest.value_or(*c.t_g_median), *c.t_g_median);
    slowest = std::max(slowest.value_or(*c.t_g_median), *c.t_g_median);
  }
  // One T_g for every grokked cell: gnuplot would warn of an empty colour range. The cells then
  // take the palette's middle, and the colour bar, with nothing to compare, is left out.
  const bool one_t_g = fastest && *fastest == *slowest;

  const std::string script = sweep_dir + "/heatmap.gp";
  {
    std::ofstream gp(script);
    // Relative file names and the data inline: the script can be re-run by hand after editing
    // (cd SWEEP_DIR && gnuplot heatmap.gp).
    gp << "# Draws the sweep's phase diagrams: cd into the sweep directory, then gnuplot "
          "heatmap.gp\n"
       << "set terminal pngcairo size " << width << "," << height << " noenhanced font ',10'\n"
       << data_block("$T_g", d, true) << data_block("$test_acc", d, false)
       // Before the axes' own tics: `set tics` would turn a single row's unset y tics back on.
       << "set tics scale 0\n"
       << tics("x", d.x_labels) << "set xlabel " << quoted(d.x_key, '\'') << "\n"
       << (d.y_key.empty() ? "unset ytics\n" : tics("y", d.y_labels) + "set ylabel " +
                                                    quoted(d.y_key, '\'') + "\n")
       << "set xrange [-0.5:" << nx - 0.5 << "]\nset yrange [-0.5:" << ny - 0.5 << "]\n"
       // Each cell a box of its colour, the grey ones on top, the numbers over both.
       << "cell = 'using 1:2:(0.5):(0.5):3 with boxxyerror fillstyle solid 1.0 noborder "
          "fillcolor palette notitle'\n"
       << "\n# Steps to grok: fast green, slow red; grey where the median run did not grok.\n"
       << "set output 'heatmap_T_g.png'\n"
       << "set title "
       << quoted("steps to grok (T_g)" + median_note + "; grey: did not grok within " +
                     std::to_string(step_budget) + " steps",
                 '\'')
       << "\nset palette defined (0 '#1a9850', 0.5 '#fee08b', 1 '#d73027')\n"
       << "set cblabel 'steps'\n"
       << (one_t_g ? "set cbrange [" + number(*fastest - 1, "%.17g") + ":" +
                         number(*fastest + 1, "%.17g") + "]\n"
                   : "")
       << (fastest && !one_t_g ? "set colorbox\n" : "unset colorbox\n")
       << "plot $T_g @cell, \\\n"
          "     $T_g using 1:2:($5 == 1 ? 0.5 : NaN):(0.5) with boxxyerror fillstyle solid 1.0 "
          "noborder fillcolor rgb '#9e9e9e' notitle, \\\n"
          "     $T_g using 1:2:4 with labels notitle\n"
       << "\n# Final test accuracy: chance red, perfect green.\n"
       << "set output 'heatmap_test_acc.png'\n"
       << "set title " << quoted("final test accuracy" + median_note, '\'') << "\n"
       << "set palette defined (0 '#d73027', 0.5 '#fee08b', 1 '#1a9850')\n"
       << "set cbrange [0:1]\nset cblabel 'accuracy'\n"
       << (any_accuracy ? "set colorbox\n" : "unset colorbox\n")
       << "plot $test_acc @cell, $test_acc using 1:2:4 with labels notitle\n";
  }
  if (!gnuplot_available()) {
    std::fprintf(stderr, "plot: gnuplot is not installed; wrote %s but not the heatmaps "
                 "(apt-get install gnuplot-nox)\n", script.c_str());
    return false;
  }
  if (!run_gnuplot(sweep_dir, "heatmap.gp")) {
    std::fprintf(stderr, "plot: gnuplot failed on %s\n", script.c_str());
    return false;
  }
  return true;
}

}  // namespace tg::grok::sweep
