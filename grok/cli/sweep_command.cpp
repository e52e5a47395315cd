// `tinygrok sweep SPEC --out DIR`: a grid of training runs from a JSON spec, several at a time as
// child processes, resumable by running it again, and shared among the ranks under mpirun; then
// results.csv and the phase diagrams (grok/sweep/ does the work).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "grok/cli/command.h"
#include "grok/cli/number_option.h"
#include "grok/config.h"
#include "grok/sweep/grid.h"
#include "grok/sweep/heatmap_plot.h"
#include "grok/sweep/mpi.h"
#include "grok/sweep/phase_diagram.h"
#include "grok/sweep/results.h"
#include "grok/sweep/runner.h"
#include "grok/sweep/spec.h"
#include "grok/sweep/sweep_dir.h"

namespace tg::grok::cli {

namespace fs = std::filesystem;
using namespace tg::grok::sweep;

namespace {

struct SweepArgs {
  std::string spec_path, out;
  int workers = 0;  // 0: this node's cores / (its ranks * threads per run)
  int threads = 1;
  bool force = false;
};

// A step every rank takes together: true when it went well on all of them. A failure is printed
// once: by rank 0 when it failed there too (every rank reads the same spec), else by each rank
// where it happened.
bool all_ranks_ok(const MpiJob& mpi, const std::string& error, const std::string& prefix) {
  const std::vector<int> failed = mpi.all_gather(error.empty() ? 0 : 1);
  if (!error.empty() && (mpi.rank() == 0 || failed[0] == 0))
    std::fprintf(stderr, "tinygrok: %s%s\n", prefix.c_str(), error.c_str());
  return std::none_of(failed.begin(), failed.end(), [](int f) { return f != 0; });
}

// The grid keys each heatmap cell's median runs over: those besides the axes with several values.
std::string median_over(const SweepSpec& spec) {
  std::string over;
  for (const GridAxis& axis : spec.grid)
    if (axis.key != spec.heatmap_x && axis.key != spec.heatmap_y && axis.values.size() > 1)
      over += (over.empty() ? "" : ", ") + axis.key;
  return over;
}

std::string grid_shape(const SweepSpec& spec) {
  std::string keys, sizes;
  for (const GridAxis& axis : spec.grid) {
    keys += (keys.empty() ? "" : " x ") + axis.key;
    sizes += (sizes.empty() ? "" : " x ") + std::to_string(axis.values.size());
  }
  return keys + " = " + sizes;
}

// Rank 0: every result in grid order, results.csv, heatmap.csv, the plots and the last word.
void write_outputs(const SweepArgs& args, const SweepSpec& spec,
                   const std::vector<GridPoint>& points, const std::vector<RunResult>& results) {
  write_results_csv((fs::path(args.out) / "results.csv").string(), spec, points, results);
  const PhaseDiagram diagram = phase_diagram(spec, points, results);
  write_heatmap_csv((fs::path(args.out) / "heatmap.csv").string(), diagram);
  int64_t step_budget = 0;
  for (const GridPoint& point : points) step_budget = std::max(step_budget, point.config.steps);
  const bool plotted = plot_heatmaps(args.out, diagram, median_over(spec), step_budget);
  int counts[4] = {0, 0, 0, 0};  // skipped, started or redone, resumed, failed
  for (const RunResult& r : results) {
    counts[0] += r.action == "skipped";
    counts[1] += r.action == "started" || r.action == "redone";
    counts[2] += r.action == "resumed";
    counts[3] += r.status == "failed";
  }
  const auto unfinished = std::count_if(results.begin(), results.end(), [](const RunResult& r) {
    return r.status == "interrupted" || r.status == "not_run";
  });
  std::fprintf(stderr, "sweep: %zu runs: %d skipped (already finished), %d ran, %d resumed; "
               "%d failed, %ld unfinished. Results in %s/results.csv and %s/heatmap.csv%s%s%s\n",
               results.size(), counts[0], counts[1], counts[2], counts[3],
               static_cast<long>(unfinished), args.out.c_str(), args.out.c_str(),
               plotted ? "; phase diagrams in " : "", plotted ? args.out.c_str() : "",
               plotted ? "/heatmap_T_g.png and heatmap_test_acc.png" : "");
  if (unfinished > 0)
    std::fprintf(stderr, "sweep: interrupted; run the same command again to finish the grid\n");
}

int run_sweep(const SweepArgs& args) {
  MpiJob mpi;
  const std::string prefix = mpi.size() > 1 ? cat("[rank ", mpi.rank(), "] ") : "";

  // Everything that can fail on bad input, on every rank alike, before any run starts.
  SweepSpec spec;
  std::vector<GridPoint> points;
  std::string error;
  try {
    check(args.workers >= 0, "--workers: must be >= 0 (0 = the cores / --threads), got ",
          args.workers);
    check_threads_flag(args.threads);
    spec = read_spec(args.spec_path);
    points = expand_grid(spec, args.threads, args.spec_path);
    check_sweep_dir(args.out, spec, args.force);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!all_ranks_ok(mpi, error, prefix)) return 2;
  // Only once every rank has checked the directory: a shared one then gets this spec's copy.
  try {
    write_spec_copy(args.out, spec, cat("rank", mpi.rank()));
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!all_ranks_ok(mpi, error, prefix)) return 2;

  // This rank's share of the grid: point i on rank i % size.
  std::vector<GridPoint> mine;
  for (const GridPoint& point : points)
    if (static_cast<int>(point.index % static_cast<size_t>(mpi.size())) == mpi.rank())
      mine.push_back(point);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int per_run = args.threads > 0 ? args.threads : cores;
  RunnerOptions options;
  options.program = fs::read_symlink("/proc/self/exe").string();
  options.workers = args.workers > 0 ? args.workers
                                     : std::max(1, cores / (mpi.ranks_on_this_node() * per_run));
  options.prefix = prefix;
  if (mpi.rank() == 0)
    std::fprintf(stderr, "sweep: %zu runs (%s) of preset %s into %s; %s%d at a time, %d "
                 "thread(s) each\n", points.size(), grid_shape(spec).c_str(), spec.preset.c_str(),
                 runs_dir(args.out).c_str(),
                 mpi.size() > 1 ? cat(mpi.size(), " MPI ranks (point i on rank i % ",
                                      mpi.size(), "), each ").c_str() : "",
                 options.workers, args.threads);
  std::vector<RunResult> results;
  bool interrupted = false;
  error.clear();
  try {
    results = run_points(spec, mine, runs_dir(args.out), options, &interrupted);
  } catch (const std::exception& e) {  // still take part in the gathering below
    error = e.what();
    std::fprintf(stderr, "tinygrok: %s%s\n", prefix.c_str(), error.c_str());
  }
  const std::vector<int> states =
      mpi.all_gather((interrupted ? 1 : 0) | (error.empty() ? 0 : 2));
  const std::vector<std::string> texts = mpi.gather_to_root(results_to_json(results));
  const bool any_interrupted =
      std::any_of(states.begin(), states.end(), [](int s) { return (s & 1) != 0; });
  const bool any_error =
      std::any_of(states.begin(), states.end(), [](int s) { return (s & 2) != 0; });
  bool any_failed = std::any_of(results.begin(), results.end(),
                                [](const RunResult& r) { return r.status == "failed"; });
  if (mpi.rank() == 0) {
    std::vector<RunResult> all(points.size());
    for (size_t i = 0; i < all.size(); ++i) all[i].index = i;
    for (const std::string& text : texts)
      for (RunResult& r : results_from_json(text)) {
        check(r.index < all.size(), "sweep: a rank sent a result for grid point ", r.index);
        all[r.index] = std::move(r);
      }
    write_outputs(args, spec, points, all);
    any_failed = std::any_of(all.begin(), all.end(),
                             [](const RunResult& r) { return r.status == "failed"; });
  }
  if (any_interrupted) return 130;  // the shell's convention after Ctrl-C, as train's
  return any_failed || any_error ? 1 : 0;
}

class SweepCommand : public Command {
 public:
  explicit SweepCommand(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "sweep", "Run a grid of training runs from a JSON spec, several at a time; run it again "
                 "to resume; under mpirun the ranks share the grid");
    app_->add_option("spec", args_.spec_path,
                     "JSON spec: {\"preset\": P, \"base\": {field: value}, \"grid\": {field: "
                     "[values]}, \"heatmap\": {\"x\": field, \"y\": field}}; fields are "
                     "config.json's")
        ->required();
    app_->add_option("--out", args_.out, "Sweep directory: spec.json, runs/, results.csv, "
                     "heatmap.csv, heatmap_*.png")
        ->required();
    add_number_option(app_, "--workers", args_.workers,
                      "Runs at once (per MPI rank); 0 = the cores / --threads (shared among the "
                      "ranks on a node)")
        ->capture_default_str();
    add_number_option(app_, "--threads", args_.threads, "CPU threads of each run; 0 = every core")
        ->capture_default_str();
    app_->add_flag("--force", args_.force,
                   "Use --out even if it holds another spec's sweep (runs of the same "
                   "configuration are kept, the others redone)");
    app_->footer(MpiJob::built_in()
                     ? "MPI: built in. mpirun -np K tinygrok sweep ... shares the grid among K "
                       "processes (point i on rank i % K); rank 0 writes the results."
                     : "MPI: not in this build (install libopenmpi-dev and configure with "
                       "-DTINYGROK_MPI=ON to run sweeps under mpirun).");
  }
  CLI::App* app() const override { return app_; }
  int run() override { return run_sweep(args_); }

 private:
  CLI::App* app_ = nullptr;
  SweepArgs args_;
};

}  // namespace

std::unique_ptr<Command> make_sweep_command(CLI::App& parent) {
  return std::make_unique<SweepCommand>(parent);
}

}  // namespace tg::grok::cli
