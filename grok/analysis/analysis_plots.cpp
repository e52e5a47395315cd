// The analysis' gnuplot scripts, and running them.
#include "grok/analysis/analysis_plots.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "grok/gnuplot.h"

namespace tg::grok::analysis {

using json = nlohmann::json;

namespace {

// Every script starts the same way: CSV input, a PNG named after the script, a header row.
std::string preamble(const std::string& name, const std::string& what) {
  return "# Draws " + name + ".png (" + what + "): cd into RUN/analysis, then gnuplot " + name +
         ".gp\n"
         "set datafile separator ','\n"
         "set terminal pngcairo size 1000,640 noenhanced font ',10'\n"
         "set output '" +
         name +
         ".png'\n"
         "set key autotitle columnhead\n"
         "set grid\n"
         "set xlabel 'step'\n";
}

// With one snapshot, a plot against the step has one point: gnuplot's autoscaled range would be
// empty, which it widens with a warning on stderr. A range of our own keeps analyze's output clean.
std::string step_range(const json& a) {
  if (a["steps"].size() != 1) return "";
  const int64_t step = a["steps"].front().get<int64_t>();
  return cat("set xrange [", step - 1, ":", step + 1, "]  # one snapshot\n");
}

std::string join(const json& values, const char* separator) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : separator) + v.dump();
  return out;
}

std::string losses_script(const json& a) {
  std::ostringstream gp;
  gp << preamble("losses", "loss curves") << step_range(a) << "set logscale y\n"
     << "set format y '%.0e'\n"
     << "set ylabel 'cross-entropy (log)'\n"
     << "set key outside right\n"
     << "set title 'train, test, restricted and excluded loss";
  if (a["restricted_loss"]["computed"].get<bool>())
    gp << (a["key_frequencies"]["values"].empty()
               ? " (every frequency: no key frequencies)"
               : " (key frequencies " + join(a["key_frequencies"]["values"], " ") + ")");
  gp << "'\n"
     << "plot 'analysis.csv' using 1:2 with linespoints pt 7 ps 0.5 title 'train', \\\n"
     << "     '' using 1:4 with linespoints pt 7 ps 0.5 title 'test'";
  if (a["restricted_loss"]["computed"].get<bool>())
    gp << ", \\\n     '' using 1:6 with linespoints pt 7 ps 0.5 title 'restricted (all pairs)', "
          "\\\n"
       << "     '' using 1:8 with linespoints pt 7 ps 0.5 title 'excluded (train)'";
  gp << "\n";
  return gp.str();
}

std::string fourier_script(const json& a) {
  const json& keys = a["key_frequencies"]["values"];
  const std::string last = a["steps"].back().dump();
  std::string is_key;
  for (const auto& k : keys) is_key += (is_key.empty() ? "" : " || ") + ("$2 == " + k.dump());
  if (is_key.empty()) is_key = "0";
  std::ostringstream gp;
  gp << preamble("fourier", "embedding Fourier norms") << "set style fill solid 0.8 noborder\n"
     << "set boxwidth 0.8\n"
     << "set xlabel 'frequency k'\n"
     << "set ylabel 'embedding norm at k (cos and sin)'\n"
     << "set title 'embedding Fourier norms at step " << last << " ("
     << a["key_frequencies"]["embedding"].get<std::string>() << "; constant omitted)'\n"
     << "plot 'fourier.csv' using (($1 == " << last << " && $2 > 0 && !(" << is_key
     << ")) ? $2 : 1/0):3 with boxes lc rgb '#7f7f7f' title 'frequency', \\\n"
     << "     '' using (($1 == " << last << " && (" << is_key
     << ")) ? $2 : 1/0):3 with boxes lc rgb '#d62728' title 'key frequency'\n";
  return gp.str();
}

std::string weight_norm_script(const json& a) {
  const json& g = a["grok_time_prediction"];
  const bool metrics = a.contains("metrics_csv") && a["metrics_csv"].get<bool>();
  std::ostringstream gp;
  gp << preamble("weight_norm", "weight norm and the decay law") << "set ylabel '||theta||_2'\n"
     << "set key top right\n"
     << "set samples 2000\n"
     << "stats '"
     << (metrics ? "../metrics.csv' using 6" : "analysis.csv' using 9")
     << " nooutput\n"
     << "set yrange [0:1.15 * STATS_max]  # the fitted curve may leave the data far behind\n"
     << "set title 'weight norm: the exponential fit after T_m and the grokking time it "
        "predicts'\n";
  std::string extra;
  if (g.contains("fit") && g["fit"]["fitted"].get<bool>()) {
    const json& f = g["fit"];
    const std::string end =
        g["T_g_observed"].is_null() ? a["steps"].back().dump() : g["T_g_observed"].dump();
    gp << "fit_c = " << f["intercept"].dump() << "\nfit_r = " << f["rate"].dump() << "\n"
       << "fit(x) = (x >= " << f["window_begin"].dump() << " && x <= " << end
       << ") ? exp(fit_c - fit_r * x) : 1/0\n";
    extra +=
        ", \\\n     fit(x) with lines dt 2 lw 2 title sprintf('fit exp(c - r t), r = %.3g', fit_r)";
    gp << "theory(x) = (x >= " << g["T_m"].dump() << " && x <= " << end << ") ? "
       << g["norm_at_T_m"].dump() << " * exp(-" << g["rate_theory_lr_x_wd"].dump() << " * (x - "
       << g["T_m"].dump() << ")) : 1/0\n";
    extra += ", \\\n     theory(x) with lines dt 3 lw 2 title 'exp(-lr wd (t - T_m)) from T_m'";
  }
  auto vertical = [&](const json& step, const char* label, const char* colour) {
    if (step.is_null()) return;
    gp << "set arrow from " << step.dump() << ", graph 0 to " << step.dump()
       << ", graph 1 nohead lw 1.5 lc rgb '" << colour << "'\n"
       << "set label '" << label << "' at " << step.dump()
       << ", graph 0.03 rotate by 90 offset -0.6,0 tc rgb '" << colour << "'\n";
  };
  if (g.contains("T_m")) {
    vertical(g["T_m"], "T_m", "#1f77b4");
    vertical(g["T_g_observed"], "T_g observed", "#2ca02c");
    vertical(g["predicted_T_g_fit"], "T_g predicted (fit)", "#d62728");
    vertical(g["predicted_T_g_theory"], "T_g predicted (lr wd)", "#9467bd");
  }
  if (!metrics) gp << step_range(a);
  gp << "plot " << (metrics ? "'../metrics.csv' using 1:6" : "'analysis.csv' using 1:9")
     << " with lines lw 2 lc rgb '#000000' title '||theta||'" << extra << "\n";
  return gp.str();
}

// `ranges`: gnuplot commands that fix the axes where autoscaling would give an empty range.
std::string series_script(const std::string& name, const std::string& what, int column,
                          const std::string& ylabel, const std::string& title, bool log_y,
                          const std::string& ranges) {
  std::ostringstream gp;
  gp << preamble(name, what) << ranges << "set ylabel '" << ylabel << "'\n"
     << "set y2label 'test accuracy'\n"
     << "set y2range [0:1.02]\n"
     << "set y2tics\n";
  if (log_y)
    gp << "set logscale y\n";
  else
    gp << "stats 'analysis.csv' using " << column << " nooutput\n"
       << "set yrange [0:(STATS_max > 0 ? 1.1 * STATS_max : 1)]  # all zeros: an empty range\n";
  gp << "set key top left\n"
     << "set title '" << title << "'\n"
     << "plot 'analysis.csv' using 1:" << column << " with linespoints pt 7 ps 0.5 lw 2 title '"
     << what << "', \\\n"
     << "     '' using 1:5 axes x1y2 with lines dt 2 lc rgb '#7f7f7f' title 'test accuracy'\n";
  return gp.str();
}

}  // namespace

json plot_analysis(const std::string& dir, const json& a) {
  std::vector<std::pair<std::string, std::string>> scripts = {
      {"losses", losses_script(a)}, {"weight_norm", weight_norm_script(a)}};
  if (a["key_frequencies"].contains("values")) scripts.emplace_back("fourier", fourier_script(a));
  const json& rho = a["settings"]["sharpness_rho"];
  const std::string radius = rho["rule"] == "absolute"
                                 ? "rho = " + rho["rho"].dump()
                                 : "rho = " + rho["fraction"].dump() + " x ||theta||";
  // One snapshot's sharpness is one value on a log axis: a factor of 3 either side (none if 0,
  // which a log axis leaves out anyway).
  std::string sharpness_range = step_range(a);
  const double sharp = a["trends"]["sharpness_first"].get<double>();
  if (a["steps"].size() == 1 && sharp > 0)
    sharpness_range += cat("set yrange [", sharp / 3, ":", sharp * 3, "]\n");
  scripts.emplace_back(
      "sharpness", series_script("sharpness", "sharpness", 10, "max L(theta+eps) - L(theta) (log)",
                                 "sharpness on the train set, " + radius, true, sharpness_range));
  scripts.emplace_back(
      "softmax_collapse",
      series_script("softmax_collapse", "softmax collapse", 12, "fraction of train samples",
                    "softmax collapse: float32 sum exp(z - max z) == 1", false, step_range(a)));
  for (const auto& [name, text] : scripts) std::ofstream(dir + "/" + name + ".gp") << text;

  json out;
  out["written"] = json::array();
  if (!gnuplot_available()) {
    out["note"] = "gnuplot is not installed: the .gp scripts are written, the PNGs are not";
    std::fprintf(stderr,
                 "analyze: gnuplot is not installed; wrote the .gp scripts in %s but no "
                 "PNGs (apt-get install gnuplot-nox)\n",
                 dir.c_str());
    return out;
  }
  for (const auto& [name, text] : scripts) {
    if (run_gnuplot(dir, name + ".gp")) {
      out["written"].push_back(name + ".png");
    } else {
      out["note"] = "gnuplot failed on some scripts";
      std::fprintf(stderr, "analyze: gnuplot failed on %s/%s.gp\n", dir.c_str(), name.c_str());
    }
  }
  return out;
}

}  // namespace tg::grok::analysis
