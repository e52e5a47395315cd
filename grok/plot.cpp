// Plot: the gnuplot script for a run's curves, and running it.
#include "grok/plot.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "grok/gnuplot.h"

namespace tg::grok {

bool plot_curves(const std::string& run_dir, bool quiet) {
  const std::string script = run_dir + "/curves.gp";
  {
    std::ofstream gp(script);
    // Relative file names: the script runs from the run directory, so it can be re-run by hand
    // (cd RUN && gnuplot curves.gp) after editing.
    gp << "# Draws curves.png from metrics.csv: cd into the run directory, then gnuplot curves.gp\n"
          "set datafile separator ','\n"
          "set terminal pngcairo size 1100,900 noenhanced font ',10'\n"
          "set output 'curves.png'\n"
          "set key autotitle columnhead\n"
          // The norm's range, before any axis setting filters what stats reads: a flat norm (a
          // run of a step or two) is an empty range to autoscaling, which gnuplot would widen
          // with a warning on stderr.
          "stats 'metrics.csv' using 6 name 'norm' nooutput\n"
          "set multiplot layout 2,1\n"
          "set logscale x\n"
          "set xlabel 'step + 1'\n"
          "set grid\n"
          "set title 'accuracy (left) and loss (right, log)'\n"
          "set ylabel 'accuracy'\n"
          "set yrange [0:1.02]\n"
          "set y2label 'cross-entropy loss'\n"
          "set logscale y2\n"
          "set y2tics\n"
          "set format y2 '%.0e'\n"
          "set key left center\n"
          "plot 'metrics.csv' using ($1+1):3 with lines lw 2 title 'train acc', \\\n"
          "     '' using ($1+1):5 with lines lw 2 title 'test acc', \\\n"
          "     '' using ($1+1):2 axes x1y2 with lines dt 2 title 'train loss', \\\n"
          "     '' using ($1+1):4 axes x1y2 with lines dt 2 title 'test loss'\n"
          "unset y2label\n"
          "unset y2tics\n"
          "unset logscale y2\n"
          "set title 'weight norm ||theta||'\n"
          "set ylabel '||theta||_2'\n"
          "if (norm_max - norm_min <= 1e-6 * abs(norm_max)) {\n"
          "  set yrange [0.99 * norm_min - 1e-6:1.01 * norm_max + 1e-6]\n"
          "} else {\n"
          "  set autoscale y\n"
          "}\n"
          "set key top left\n"
          "plot 'metrics.csv' using ($1+1):6 with lines lw 2 title 'weight norm'\n"
          "unset multiplot\n";
  }
  if (!gnuplot_available()) {
    std::fprintf(stderr, "plot: gnuplot is not installed; wrote %s but not curves.png "
                 "(apt-get install gnuplot-nox)\n", script.c_str());
    return false;
  }
  if (!run_gnuplot(run_dir, "curves.gp", /*show_output=*/!quiet)) {
    std::fprintf(stderr, "plot: gnuplot failed on %s\n", script.c_str());
    return false;
  }
  return true;
}

}  // namespace tg::grok
