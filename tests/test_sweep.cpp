// `tinygrok sweep`'s parts without processes: the spec's checks (each error naming the file and
// the key), the grid's order and run names, the train flags of a point, the plan for a run
// directory (skip, resume, start, redo), the sweep directory's spec check, results.csv and its
// JSON wire form, and the phase diagram's medians. tests/cli/test_sweep.sh runs real sweeps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "grok/config.h"
#include "grok/sweep/grid.h"
#include "grok/sweep/phase_diagram.h"
#include "grok/sweep/results.h"
#include "grok/sweep/runner.h"
#include "grok/sweep/spec.h"
#include "grok/sweep/sweep_dir.h"
#include "test_support.h"

using namespace tg;
using namespace tg::grok;
using namespace tg::grok::sweep;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;
using json = nlohmann::json;
using tg::testing::TempDir;
using tg::testing::read_text;

namespace {

// Keys deliberately not in alphabetical order: the grid must keep the file's order.
const char* kSpec = R"({"preset": "default",
  "base": {"steps": 4000, "stop_at_grok": true, "eval_every": 25},
  "grid": {"wd": [0.1, 0.3, 1.0], "frac": [0.3, 0.5], "seed": [0, 1, 2]},
  "heatmap": {"x": "wd", "y": "frac"}})";

SweepSpec parse(const std::string& text) { return parse_spec(ordered_json::parse(text), "s.json"); }

// The message of the tg::Error parsing `text` throws.
std::string spec_error(const std::string& text) {
  return tg::testing::error_of([&] { expand_grid(parse(text), 1, "s.json"); });
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

RunResult result(size_t index, const std::string& status, json values) {
  RunResult r;
  r.index = index;
  r.status = status;
  r.values = std::move(values);
  return r;
}

}  // namespace

TEST_CASE("sweep spec: a valid spec keeps the file's key order", "[sweep]") {
  const SweepSpec spec = parse(kSpec);
  REQUIRE(spec.preset == "default");
  REQUIRE(spec.grid.size() == 3);
  REQUIRE(spec.grid[0].key == "wd");
  REQUIRE(spec.grid[1].key == "frac");
  REQUIRE(spec.grid[2].key == "seed");
  REQUIRE(spec.grid[0].values.size() == 3);
  REQUIRE(spec.base.size() == 3);
  REQUIRE(spec.base.begin().key() == "steps");
  REQUIRE(spec.heatmap_x == "wd");
  REQUIRE(spec.heatmap_y == "frac");
  // Without "heatmap": the first two grid keys; with one key: one row.
  const SweepSpec plain = parse(R"({"grid": {"lr": [0.001, 0.01], "wd": [0, 1]}})");
  REQUIRE(plain.preset == "default");
  REQUIRE(plain.heatmap_x == "lr");
  REQUIRE(plain.heatmap_y == "wd");
  const SweepSpec one = parse(R"({"grid": {"seed": [0, 1]}})");
  REQUIRE(one.heatmap_x == "seed");
  REQUIRE(one.heatmap_y.empty());
}

TEST_CASE("sweep spec: every bad spec is an error naming the file and the key", "[sweep]") {
  struct Case {
    const char* spec;
    std::vector<const char*> says;
  };
  const std::vector<Case> cases = {
      {R"([1, 2])", {"s.json", "must be a JSON object"}},
      {R"({"grid": {"wd": [1]}, "grids": {}})", {"s.json", "grids", "unknown key"}},
      {R"({"base": {"steps": 10}})", {"s.json", "grid", "missing"}},
      {R"({"grid": {}})", {"s.json", "grid", "empty"}},
      {R"({"grid": [1, 2]})", {"s.json", "grid", "must be an object"}},
      {R"({"preset": "nope", "grid": {"wd": [1]}})", {"s.json", "preset", "nope"}},
      {R"({"preset": 3, "grid": {"wd": [1]}})", {"s.json", "preset", "must be a string"}},
      {R"({"base": {"wdd": 1}, "grid": {"wd": [1]}})", {"s.json", "base.wdd", "unknown key", "wd"}},
      {R"({"grid": {"weight_decay": [1]}})", {"s.json", "grid.weight_decay", "unknown key"}},
      {R"({"grid": {"wd": []}})", {"s.json", "grid.wd", "empty list"}},
      {R"({"grid": {"wd": 0.1}})", {"s.json", "grid.wd", "must be a list"}},
      {R"({"grid": {"wd": ["0.1"]}})", {"s.json", "grid.wd", "must be a number", "a string"}},
      {R"({"grid": {"steps": [100.5]}})", {"s.json", "grid.steps", "must be an integer"}},
      {R"({"grid": {"seed": [-1]}})", {"s.json", "grid.seed", "non-negative integer"}},
      {R"({"grid": {"act": [1]}})", {"s.json", "grid.act", "must be a string"}},
      {R"({"base": {"stop_at_grok": 1}, "grid": {"wd": [1]}})",
       {"s.json", "base.stop_at_grok", "true or false"}},
      {R"({"base": {"threads": 2}, "grid": {"wd": [1]}})", {"s.json", "base.threads", "--threads"}},
      {R"({"grid": {"preset": ["nanda"]}})", {"s.json", "grid.preset", "top-level"}},
      {R"({"base": {"wd": 1}, "grid": {"wd": [1]}})", {"s.json", "grid.wd", "also in base"}},
      {R"({"grid": {"wd": [1, 0.5, 1.0]}})", {"s.json", "grid.wd", "repeated"}},
      {R"({"grid": {"wd": [1], "frac": [0.3]}, "heatmap": {"x": "lr"}})",
       {"s.json", "heatmap.x", "'lr' is not a key of the grid"}},
      {R"({"grid": {"wd": [1], "frac": [0.3]}, "heatmap": {"x": "wd", "y": "wd"}})",
       {"s.json", "heatmap.y", "same key"}},
      {R"({"grid": {"wd": [1], "frac": [0.3]}, "heatmap": {"y": "wd"}})",
       {"s.json", "heatmap.x", "missing"}},
      {R"({"grid": {"wd": [1], "frac": [0.3]}, "heatmap": {"x": "wd", "z": "frac"}})",
       {"s.json", "heatmap.z", "unknown key"}},
      // Each point's configuration is validated before anything runs.
      {R"({"grid": {"wd": [1], "frac": [0.3, 1.5]}})",
       {"s.json", "grid point wd=1,frac=1.5", "--frac", "1.5"}},
      {R"({"grid": {"act": ["relu", "tanh"]}})", {"s.json", "act=tanh", "--act", "tanh"}},
      // Values that differ only in unsafe characters would share a run directory.
      {R"({"grid": {"split_file": ["a/b", "a_b"]}})",
       {"s.json", "split_file=a_b", "share the run directory"}},
  };
  for (const Case& c : cases) {
    INFO(c.spec);
    const std::string message = spec_error(c.spec);
    REQUIRE_FALSE(message.empty());
    for (const char* part : c.says) REQUIRE_THAT(message, Contains(part));
  }
  // A file that is not there, or not JSON.
  TempDir dir;
  REQUIRE_TG_ERROR(read_spec(dir / "none.json"), Contains("none.json") && Contains("cannot read"));
  write_text(dir / "bad.json", "{\"grid\": ");
  REQUIRE_TG_ERROR(read_spec(dir / "bad.json"), Contains("bad.json") && Contains("not valid JSON"));
}

TEST_CASE("sweep grid: the Cartesian product in file order, last key fastest", "[sweep]") {
  const std::vector<GridPoint> points = expand_grid(parse(kSpec), 2, "s.json");
  REQUIRE(points.size() == 18);
  std::vector<std::string> names;
  for (const GridPoint& p : points) names.push_back(p.name);
  REQUIRE(names[0] == "wd=0.1,frac=0.3,seed=0");
  REQUIRE(names[1] == "wd=0.1,frac=0.3,seed=1");
  REQUIRE(names[2] == "wd=0.1,frac=0.3,seed=2");
  REQUIRE(names[3] == "wd=0.1,frac=0.5,seed=0");
  REQUIRE(names[6] == "wd=0.3,frac=0.3,seed=0");
  REQUIRE(names[17] == "wd=1.0,frac=0.5,seed=2");
  for (size_t i = 0; i < points.size(); ++i) {
    const GridPoint& p = points[i];
    REQUIRE(p.index == i);
    REQUIRE(p.value_index == std::vector<size_t>{i / 6, (i / 3) % 2, i % 3});
    // preset, then base, then the point's values; the sweep's threads.
    const TrainConfig expected_preset = preset("default");
    REQUIRE(p.config.model == expected_preset.model);
    REQUIRE(p.config.lr == expected_preset.lr);
    REQUIRE(p.config.steps == 4000);
    REQUIRE(p.config.stop_at_grok);
    REQUIRE(p.config.wd == std::vector<double>{0.1, 0.3, 1.0}[i / 6]);
    REQUIRE(p.config.frac == std::vector<double>{0.3, 0.5}[(i / 3) % 2]);
    REQUIRE(p.config.seed == i % 3);
    REQUIRE(p.config.threads == 2);
  }
}

TEST_CASE("sweep grid: run names are file-system safe and keep values as written", "[sweep]") {
  const SweepSpec spec = parse(
      R"({"grid": {"lr": [1e-3, 0.01], "op": ["add", "x2y2"], "split_file": ["runs/a b.txt"]}})");
  const std::vector<GridPoint> points = expand_grid(spec, 1, "s.json");
  REQUIRE(points.size() == 4);
  REQUIRE(points[0].name == "lr=0.001,op=add,split_file=runs_a_b.txt");
  REQUIRE(points[3].name == "lr=0.01,op=x2y2,split_file=runs_a_b.txt");
  REQUIRE(value_text(ordered_json(1e-5)) == "1e-05");
  REQUIRE(value_text(ordered_json(0.1)) == "0.1");
  REQUIRE(value_text(ordered_json("relu")) == "relu");
  REQUIRE(value_text(ordered_json(true)) == "true");
}

TEST_CASE("sweep grid: the train flags give the point's configuration", "[sweep]") {
  REQUIRE(train_flag("stop_at_grok") == "--stop-at-grok");
  REQUIRE(train_flag("eval_every") == "--eval-every");
  REQUIRE(train_flag("d_mlp") == "--d-mlp");
  REQUIRE(train_flag("split_file") == "--split");
  REQUIRE(train_flag("beta2") == "--betas");
  const std::vector<GridPoint> points = expand_grid(parse(kSpec), 1, "s.json");
  const std::vector<std::string> expected{
      "--preset", "default", "--steps", "4000", "--stop-at-grok", "--eval-every", "25",
      "--wd",     "0.3",     "--frac",  "0.5",  "--seed",         "2",            "--threads", "1"};
  REQUIRE(train_arguments(parse(kSpec), points[11]) == expected);
  // beta1 and beta2 travel together as --betas; false booleans are spelt out.
  const SweepSpec betas = parse(R"({"preset": "nanda",
      "base": {"stop_at_grok": false, "beta2": 0.99}, "grid": {"beta1": [0.8]}})");
  const std::vector<std::string> args = train_arguments(betas, expand_grid(betas, 1, "s.json")[0]);
  const std::vector<std::string> expected_betas{"--preset", "nanda", "--stop-at-grok=false",
                                                "--betas",  "0.8",   "0.99",
                                                "--threads", "1"};
  REQUIRE(args == expected_betas);
}

TEST_CASE("sweep grid: a field a point's run ignores keeps the preset's value and no flag",
          "[sweep]") {
  // The default preset is the mlp model; a base copied from its run's config.json also sets the
  // transformer's fields, which train would refuse as flags that have no effect.
  const SweepSpec spec = parse(R"({"preset": "default",
      "base": {"layers": 3, "heads": 3, "grok_patience": 7, "d_mlp": 64},
      "grid": {"grokfast": ["none", "ema"], "grokfast_alpha": [0.9, 0.5]}})");
  const std::vector<GridPoint> points = expand_grid(spec, 1, "s.json");
  REQUIRE(points.size() == 4);
  const TrainConfig fresh = preset("default");
  for (const GridPoint& point : points) {
    INFO(point.name);
    REQUIRE(point.config.layers == fresh.layers);
    REQUIRE(point.config.heads == fresh.heads);  // 3 would not divide d_model: not validated
    REQUIRE(point.config.grok_patience == fresh.grok_patience);
    REQUIRE(point.config.d_mlp == 64);
    const std::vector<std::string> args = train_arguments(spec, point);
    for (const char* ignored : {"--layers", "--heads", "--grok-patience"})
      REQUIRE(std::find(args.begin(), args.end(), ignored) == args.end());
    REQUIRE_NOTHROW(check_given_flags_apply(point.config, args));
  }
  REQUIRE(points[1].config.grokfast_alpha == fresh.grokfast_alpha);  // none: alpha unread
  REQUIRE(points[3].config.grokfast_alpha == 0.5);
  const std::vector<std::string> ema = train_arguments(spec, points[3]);
  REQUIRE(std::find(ema.begin(), ema.end(), "--grokfast-alpha") != ema.end());
  // An axis that no point's run reads would train one model under several names.
  REQUIRE_THAT(spec_error(R"({"preset": "default", "grid": {"layers": [1, 2]}})"),
               Contains("s.json: grid: 'layers' (--layers) has no effect on the mlp model"));
  REQUIRE_THAT(spec_error(R"({"base": {"op": "s5"}, "grid": {"p": [23, 31]}})"),
               Contains("grid: 'p' (--p) has no effect with --op s5"));
  // sgd reads the first of --betas only (its momentum): beta2 is a field it ignores.
  REQUIRE_THAT(spec_error(R"({"base": {"optimizer": "sgd"}, "grid": {"beta2": [0.5, 0.9]}})"),
               Contains("grid: 'beta2' (--betas) has no effect with --optimizer sgd"));
  const SweepSpec sgd = parse(R"({"base": {"optimizer": "sgd", "beta2": 0.5},
                                  "grid": {"beta1": [0.5, 0.9]}})");
  for (const GridPoint& point : expand_grid(sgd, 1, "s.json")) {
    REQUIRE(point.config.beta2 == preset("default").beta2);
    const std::vector<std::string> args = train_arguments(sgd, point);
    const auto betas = std::find(args.begin(), args.end(), "--betas");
    REQUIRE(betas != args.end());
    REQUIRE(std::next(betas) != args.end());
    REQUIRE(*std::next(betas) == (point.config.beta1 == 0.5 ? "0.5" : "0.9"));
  }
}

TEST_CASE("sweep runner: a run directory is skipped, resumed, started, redone or kept",
          "[sweep]") {
  TempDir dir;
  TrainConfig config = preset("default");
  config.threads = 1;
  const fs::path run = dir.path / "run";
  REQUIRE(plan_run(run.string(), config) == RunAction::Start);
  fs::create_directories(run);
  REQUIRE(plan_run(run.string(), config) == RunAction::Redo);  // partial: no config
  write_text(run / "config.json", to_json(config).dump(2));
  REQUIRE(plan_run(run.string(), config) == RunAction::Redo);  // partial: no checkpoint
  write_text(run / "checkpoint" / "model.safetensors", "x");
  write_text(run / "summary.json", R"({"status": "interrupted", "steps": 100})");
  REQUIRE(plan_run(run.string(), config) == RunAction::Resume);
  for (const char* status : {"completed", "grokked", "nan_loss"}) {
    write_text(run / "summary.json", cat(R"({"status": ")", status, R"(", "steps": 100})"));
    REQUIRE(plan_run(run.string(), config) == RunAction::Skip);
  }
  TrainConfig more_threads = config;  // a sweep may change --threads
  more_threads.threads = 4;
  REQUIRE(plan_run(run.string(), more_threads) == RunAction::Skip);
  TrainConfig other = config;  // another configuration's run is replaced
  other.wd = 0.5;
  REQUIRE(plan_run(run.string(), other) == RunAction::Redo);
  // A field the run ignores is no difference: an older sweep passed --layers 3 to this mlp run.
  TrainConfig older = config;
  older.layers = 3;
  write_text(run / "config.json", to_json(older).dump(2));
  REQUIRE(plan_run(run.string(), config) == RunAction::Skip);
  TrainConfig transformer = config, deeper = config;
  transformer.model = deeper.model = "transformer";
  deeper.layers = 3;
  write_text(run / "config.json", to_json(deeper).dump(2));
  REQUIRE(plan_run(run.string(), transformer) == RunAction::Redo);  // there, it is read
  // A config.json that cannot be read beside a finished run or a checkpoint is damage: the run
  // is kept (the point fails), not replaced.
  write_text(run / "config.json", R"({"wd": 1, "wd": 1})");  // a key twice
  REQUIRE(plan_run(run.string(), config) == RunAction::Damaged);
  write_text(run / "config.json", "{not json");
  REQUIRE(plan_run(run.string(), config) == RunAction::Damaged);
  fs::remove(run / "summary.json");
  REQUIRE(plan_run(run.string(), config) == RunAction::Damaged);  // the checkpoint alone
  fs::remove(run / "config.json");
  REQUIRE(plan_run(run.string(), config) == RunAction::Damaged);
  fs::remove_all(run / "checkpoint");  // nothing to lose: a partial run, replaced
  REQUIRE(plan_run(run.string(), config) == RunAction::Redo);
  write_text(run / "config.json", "{not json");
  REQUIRE(plan_run(run.string(), config) == RunAction::Redo);
}

TEST_CASE("sweep dir: only the same spec's sweep, unless --force", "[sweep]") {
  TempDir dir;
  const SweepSpec spec = parse(kSpec);
  const SweepSpec other = parse(R"({"grid": {"wd": [0.1]}})");
  const std::string out = dir / "sweep";
  check_sweep_dir(out, spec, false);  // absent: fine
  write_spec_copy(out, spec, "rank0");
  REQUIRE(ordered_json::parse(read_text(fs::path(out) / "spec.json")) == spec.source);
  REQUIRE_FALSE(fs::exists(fs::path(out) / "spec.json.rank0.tmp"));
  check_sweep_dir(out, spec, false);  // the same spec again: fine
  REQUIRE_TG_ERROR(check_sweep_dir(out, other, false),
                   Contains("--out") && Contains("another spec") && Contains("--force"));
  check_sweep_dir(out, other, true);
  write_text(dir.path / "busy" / "notes.txt", "mine");
  REQUIRE_TG_ERROR(check_sweep_dir(dir / "busy", spec, false),
                   Contains("not a sweep directory") && Contains("busy"));
}

TEST_CASE("sweep results: summary.json to a row, the wire form, results.csv", "[sweep]") {
  TempDir dir;
  write_text(dir.path / "run" / "summary.json", R"({"status": "completed", "steps": 300,
    "batch_size": 10, "T_m": 75, "T_g": null, "ratio": null,
    "final": {"step": 300, "train_loss": 0.01, "train_acc": 1.0, "test_loss": 4.5,
              "test_acc": 0.125, "weight_norm": 30.25},
    "wall_seconds": 1.5, "train_ms_per_step": 0.2})");
  const RunResult r = read_run_result(7, dir / "run");
  REQUIRE(r.index == 7);
  REQUIRE(r.status == "completed");
  REQUIRE(r.values == json{{"T_m", 75}, {"steps", 300}, {"train_acc", 1.0}, {"test_acc", 0.125},
                           {"test_loss", 4.5}, {"weight_norm", 30.25}, {"wall_seconds", 1.5}});
  REQUIRE_TG_ERROR(read_run_result(0, dir / "none"),
                   Contains("summary.json") && Contains("missing"));

  // The wire form keeps every double exactly.
  std::vector<RunResult> rows{result(0, "grokked", {{"T_g", 250}, {"test_acc", 0.1 + 0.2}}),
                              result(1, "failed", json::object())};
  rows[0].action = "resumed";
  const std::vector<RunResult> back = results_from_json(results_to_json(rows));
  REQUIRE(back.size() == 2);
  REQUIRE(back[0].values["test_acc"].get<double>() == 0.1 + 0.2);
  REQUIRE(back[0].action == "resumed");
  REQUIRE(back[1].status == "failed");
  REQUIRE_TG_ERROR(results_from_json("[{\"index\": 1}]"), Contains("not the JSON expected"));

  const SweepSpec spec = parse(R"({"grid": {"wd": [0.1, 1], "op": ["add", "a,b"]}})");
  const std::vector<GridPoint> points = [&] {
    std::vector<GridPoint> p(4);
    for (size_t i = 0; i < 4; ++i) p[i].value_index = {i / 2, i % 2};
    return p;
  }();
  const std::vector<RunResult> results{
      result(0, "grokked", {{"T_m", 75}, {"T_g", 250}, {"ratio", 250.0 / 75}, {"test_acc", 1.0}}),
      result(1, "completed", {{"T_m", 80}, {"test_acc", 0.5}}), result(2, "failed", json::object()),
      result(3, "nan_loss", {{"steps", 12}})};
  write_results_csv(dir / "results.csv", spec, points, results);
  REQUIRE(read_text(dir.path / "results.csv") ==
          "wd,op,status,T_m,T_g,ratio,steps,train_acc,test_acc,test_loss,weight_norm,wall_seconds\n"
          "0.1,add,grokked,75,250,3.3333333333333335,,,1.0,,,\n"
          "0.1,\"a,b\",completed,80,,,,,0.5,,,\n"
          "1,add,failed,,,,,,,,,\n"
          "1,\"a,b\",nan_loss,,,,12,,,,,\n");
}

TEST_CASE("sweep phase diagram: medians per cell, did-not-grok counting as never", "[sweep]") {
  const double never = std::numeric_limits<double>::infinity();
  REQUIRE(median({3, 1, 2}) == 2);
  REQUIRE(median({4, 1, 3, 2}) == 2.5);
  REQUIRE(median({1, never, 2}) == 2);
  REQUIRE(median({1, never}) == never);
  REQUIRE(median({never, never, 5}) == never);
  REQUIRE_THROWS_AS(median({}), Error);

  // wd x frac, three seeds per cell.
  const SweepSpec spec = parse(R"({"grid": {"seed": [0, 1, 2], "wd": [0.1, 1], "frac": [0.3, 0.5]},
                                   "heatmap": {"x": "wd", "y": "frac"}})");
  const std::vector<GridPoint> points = expand_grid(spec, 1, "s.json");
  REQUIRE(points.size() == 12);
  std::vector<RunResult> results(12);
  for (size_t i = 0; i < 12; ++i) {
    const size_t seed = points[i].value_index[0], wd = points[i].value_index[1],
                 frac = points[i].value_index[2];
    json values{{"test_acc", 0.1 * static_cast<double>(seed + 1)}};
    std::string status = "completed";
    if (wd == 0 && frac == 0) {  // all grok: T_g 100, 200, 300
      values["T_g"] = 100 * (seed + 1);
      status = "grokked";
    } else if (wd == 1 && frac == 0) {  // one of three groks: the median did not
      if (seed == 0) values["T_g"] = 50;
    } else if (wd == 0 && frac == 1) {  // seed 2 failed: out; the other two grok
      values["T_g"] = 400 + 100 * seed;
      if (seed == 2) status = "failed";
    } else if (seed != 1) {  // wd 1, frac 0.5: only seed 1 finished (the others did not run)
      status = seed == 0 ? "not_run" : "interrupted";
    }
    results[i] = result(i, status, values);
  }
  const PhaseDiagram d = phase_diagram(spec, points, results);
  REQUIRE(d.x_key == "wd");
  REQUIRE(d.y_key == "frac");
  REQUIRE(d.x_labels == std::vector<std::string>{"0.1", "1"});
  REQUIRE(d.y_labels == std::vector<std::string>{"0.3", "0.5"});
  REQUIRE(d.cells.size() == 4);
  REQUIRE(d.at(0, 0).runs == 3);
  REQUIRE(d.at(0, 0).grokked == 3);
  REQUIRE(d.at(0, 0).t_g_median == 200);
  REQUIRE(d.at(0, 0).test_acc_median == Approx(0.2));
  REQUIRE(d.at(1, 0).runs == 3);
  REQUIRE(d.at(1, 0).grokked == 1);
  REQUIRE_FALSE(d.at(1, 0).t_g_median.has_value());
  REQUIRE(d.at(0, 1).runs == 2);
  REQUIRE(d.at(0, 1).t_g_median == 450);
  REQUIRE(d.at(0, 1).test_acc_median == Approx(0.15));
  REQUIRE(d.at(1, 1).runs == 1);
  REQUIRE(d.at(1, 1).grokked == 0);
  REQUIRE(d.at(1, 1).test_acc_median == Approx(0.2));

  TempDir dir;
  write_heatmap_csv(dir / "heatmap.csv", d);
  const std::string csv = read_text(dir.path / "heatmap.csv");
  REQUIRE_THAT(csv, Contains("wd,frac,runs,grokked,T_g_median,test_acc_median\n"));
  REQUIRE_THAT(csv, Contains("\n0.1,0.3,3,3,200.0,"));
  REQUIRE_THAT(csv, Contains("\n1,0.3,3,1,,"));
  REQUIRE_THAT(csv, Contains("\n0.1,0.5,2,2,450.0,"));

  // One heatmap key: one row, y empty.
  const SweepSpec line =
      parse(R"({"grid": {"wd": [0.1, 1], "seed": [0, 1]}, "heatmap": {"x": "wd"}})");
  const PhaseDiagram row = phase_diagram(line, expand_grid(line, 1, "s.json"),
                                         std::vector<RunResult>(4));  // none run
  REQUIRE(row.y_key.empty());
  REQUIRE(row.cells.size() == 2);
  REQUIRE(row.at(1, 0).runs == 0);
  write_heatmap_csv(dir / "row.csv", row);
  REQUIRE(read_text(dir.path / "row.csv") == "wd,runs,grokked,T_g_median,test_acc_median\n"
                                             "0.1,0,0,,\n1,0,0,,\n");
}
