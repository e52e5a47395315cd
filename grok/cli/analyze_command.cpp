// `tinygrok analyze RUN`: the analysis suite (grok/analysis/) over a run's snapshots, into
// RUN/analysis/, with a short summary on stdout.
#include <omp.h>

#include <iostream>

#include "core/error.h"
#include "grok/analysis/run_analysis.h"
#include "grok/cli/command.h"
#include "grok/cli/number_option.h"
#include "grok/config.h"

namespace tg::grok::cli {

namespace {

class AnalyzeCommand : public Command {
 public:
  explicit AnalyzeCommand(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "analyze",
        "Analyse a run's snapshots (train --snapshot-every N): Fourier spectrum, key "
        "frequencies, neuron clusters, restricted/excluded loss, weight norms and the "
        "grokking-time prediction, sharpness, softmax collapse; into RUN/analysis/");
    app_->add_option("run", run_dir_, "The run directory")->required();
    CLI::Option* rho = add_number_option(
        app_, "--rho", rho_,
        "Sharpness radius, absolute (default: --rho-fraction of each ||theta||)");
    add_number_option(app_, "--rho-fraction", options_.rho_fraction,
                      "Sharpness radius as a fraction of each snapshot's ||theta||")
        ->capture_default_str()
        ->excludes(rho);
    add_number_option(app_, "--sharpness-steps", options_.sharpness_steps,
                      "Projected gradient-ascent steps of the sharpness estimate")
        ->capture_default_str();
    add_number_option(app_, "--key-frequencies", options_.key_frequencies,
                      "Use these key frequencies (comma-separated) instead of finding them")
        ->delimiter(',');
    add_number_option(app_, "--every", options_.every, "Analyse every Nth snapshot (and the last)")
        ->capture_default_str();
    add_number_option(app_, "--threads", threads_, "CPU threads; 0 = every core")
        ->capture_default_str();
    app_->add_flag("--no-plots", no_plots_, "Write the .gp scripts but do not run gnuplot");
    app_->add_flag("--quiet", options_.quiet, "No progress on stderr");
    rho_option_ = rho;
  }
  CLI::App* app() const override { return app_; }
  int run() override {
    check_threads_flag(threads_);
    if (threads_ > 0) omp_set_num_threads(threads_);
    if (rho_option_->count() > 0) options_.rho = rho_;
    options_.plots = !no_plots_;
    const nlohmann::json analysis = analysis::analyze_run(run_dir_, options_);
    std::cout << analysis::analysis_summary(analysis) << "wrote " << run_dir_ << "/analysis/"
              << std::endl;
    return 0;
  }

 private:
  CLI::App* app_ = nullptr;
  CLI::Option* rho_option_ = nullptr;
  std::string run_dir_;
  analysis::AnalysisOptions options_;
  double rho_ = 0;
  int threads_ = 0;
  bool no_plots_ = false;
};

}  // namespace

std::unique_ptr<Command> make_analyze_command(CLI::App& parent) {
  return std::make_unique<AnalyzeCommand>(parent);
}

}  // namespace tg::grok::cli
