// `tinygrok train`: a grokking run from a preset plus flags (grok/trainer.h does the run).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string_view>

#include "core/strict_json.h"
#include "grok/cli/command.h"
#include "grok/cli/number_option.h"
#include "grok/config.h"
#include "grok/trainer.h"

namespace tg::grok::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {


// The flags a resume may give: the run's length, its evals, and where and how it runs.
constexpr std::string_view kResumeMayChange[] = {"--steps", "--threads", "--eval-every",
                                                 "--cuda-graph", "--device"};
constexpr const char* kOnlyThoseMayChange =
    " (only --steps, --threads, --eval-every, --cuda-graph and --device can)";

// runs/PRESET-DATE-TIME, made now. Runs started in the same second (a loop over seeds in the
// background) would share the name: each claims the first free one of NAME, NAME-2, NAME-3, ...
// with mkdir, which only one process can win.
std::string claim_default_out(const std::string& preset_name) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  const std::string base = "runs/" + preset_name + "-" + stamp;
  fs::create_directories("runs");
  std::string out = base;
  for (int n = 2; !fs::create_directory(out); ++n) out = base + "-" + std::to_string(n);
  return out;
}

// Each training flag writes into `flags`; after parsing, the flags actually given are copied
// over the chosen preset, so `--preset nanda --wd 0.3` is Nanda's setup with weight decay 0.3.
struct Overrides {
  TrainConfig flags = preset("default");
  std::vector<std::pair<CLI::Option*, std::function<void(TrainConfig&)>>> copies;

  template <typename T>
  void add(CLI::App& app, const std::string& name, T TrainConfig::*field, const std::string& help) {
    CLI::Option* option = app.add_option(name, flags.*field, help)->capture_default_str();
    if constexpr (std::is_arithmetic_v<T>) option->transform(CLI::Validator(read_decimal<T>, ""));
    copies.emplace_back(option, [this, field](TrainConfig& c) { c.*field = flags.*field; });
  }
  void add_flag(CLI::App& app, const std::string& name, bool TrainConfig::*field,
                const std::string& help) {
    CLI::Option* option = app.add_flag(name, flags.*field, help);
    copies.emplace_back(option, [this, field](TrainConfig& c) { c.*field = flags.*field; });
  }
  void apply(TrainConfig& config, std::vector<std::string>* given = nullptr) const {
    for (const auto& [option, copy] : copies)
      if (option->count() > 0) {
        copy(config);
        if (given) given->push_back(option->get_name());
      }
  }
};

int run_train(const std::string& preset_name, const Overrides& overrides,
              const std::vector<double>& betas, CLI::Option* betas_option, RunOptions options) {
  TrainConfig config;
  std::vector<std::string> given_to_new_run;
  if (options.resume) {
    // A resumed run keeps its saved configuration; only kResumeMayChange may change.
    const std::string path = (fs::path(options.out) / "config.json").string();
    check(fs::exists(path), "--resume: ", options.out, " is not a run directory (no config.json)");
    check(fs::is_regular_file(path), "--resume: ", path, " is not a file");
    std::ifstream in(path);
    check(in.good(), "--resume: cannot read ", path, ": ", std::strerror(errno));
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    json saved;
    try {  // an edited config.json with a key twice would silently keep the last
      saved = parse_json_refusing_repeated_keys<json>(text, "--resume: " + path + ": ");
    } catch (const json::exception&) {
      throw Error(cat("--resume: ", path, " is not valid JSON"));
    }
    try {
      config = config_from_json(saved);
    } catch (const Error& e) {
      throw Error(cat("--resume: ", path, ": ", e.what()));
    }
    std::vector<std::string> given;
    TrainConfig changed = config;
    overrides.apply(changed, &given);
    for (const std::string& flag : given)
      check(std::find(std::begin(kResumeMayChange), std::end(kResumeMayChange), flag) !=
                std::end(kResumeMayChange),
            "--resume: ", flag, " cannot change a run in progress", kOnlyThoseMayChange);
    check_given_flags_apply(changed, given);  // --cuda-graph on a CPU run, say
    // A cosine schedule falls to its end over --steps: another length would make lr jump.
    check(config.schedule != "cosine" || changed.steps == config.steps,
          "--resume: --steps cannot change a run with --schedule cosine (its learning rate falls "
          "over the run's ", config.steps, " steps)");
    try {  // what train would refuse as flags, refused as the file's (and the flags given)
      validate(changed);
    } catch (const Error& e) {
      std::string with;
      for (const std::string& flag : given) with += (with.empty() ? " with " : ", ") + flag;
      throw Error(cat("--resume: ", path, with, ": ", e.what()));
    }
    config = changed;
  } else {
    config = preset(preset_name);
    overrides.apply(config, &given_to_new_run);
    if (betas_option->count() > 0) {
      config.beta1 = betas[0];
      config.beta2 = betas[1];
    }
  }
  // Validated first, so that a bad flag leaves no directory behind; a flag the run ignores is
  // named as such before its value is judged (--heads 3 on the mlp model).
  check_given_flags_apply(config, given_to_new_run);
  validate(config);
  const bool claimed = options.out.empty();
  if (claimed) options.out = claim_default_out(config.preset);
  RunStatus status = RunStatus::Completed;
  try {
    status = train(config, options);
  } catch (...) {
    if (claimed && fs::is_empty(options.out)) fs::remove(options.out);
    throw;
  }
  const std::string curves = options.out + "/curves.png";
  std::fprintf(stderr, "%s: metrics in %s/metrics.csv, %s, summary in %s/summary.json\n",
               status_name(status), options.out.c_str(),
               fs::exists(curves) ? ("curves in " + curves).c_str() : "no curves.png (see above)",
               options.out.c_str());
  return exit_code(status);
}

class TrainCommand : public Command {
 public:
  explicit TrainCommand(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "train", "Train a model and record the grokking curves. Flags override the preset; "
                 "the defaults shown are those of the default preset.");
    std::string presets;
    for (const std::string& n : preset_names()) presets += (presets.empty() ? "" : ", ") + n;
    app_->add_option("--preset", preset_name_, "Starting configuration: " + presets)
        ->capture_default_str();
    Overrides& o = overrides_;
    CLI::App& t = *app_;
    o.add(t, "--op", &TrainConfig::op, "Operation: add sub mul div x2y2 x2xyy2 x2xyy2x x3xy x3xy2y s5");
    o.add(t, "--p", &TrainConfig::p, "Modulus (ignored for s5)");
    o.add(t, "--frac", &TrainConfig::frac, "Fraction of all pairs used for training, in (0, 1)");
    o.add(t, "--split", &TrainConfig::split_file, "Reuse this split.txt (training pairs a*p+b)");
    o.add(t, "--model", &TrainConfig::model, "transformer or mlp");
    o.add(t, "--layers", &TrainConfig::layers, "Transformer blocks");
    o.add(t, "--d-model", &TrainConfig::d_model, "Residual stream width");
    o.add(t, "--heads", &TrainConfig::heads, "Attention heads (d_head = d_model / heads)");
    o.add(t, "--d-mlp", &TrainConfig::d_mlp, "MLP width (the mlp model's hidden units)");
    o.add(t, "--act", &TrainConfig::act, "relu, gelu or x2");
    o.add(t, "--ln", &TrainConfig::ln, "LayerNorm: none, pre or post");
    o.add(t, "--tokens", &TrainConfig::tokens, "Input format: ab, abeq ([a,b,=]) or aopbeq ([a,op,b,=])");
    o.add(t, "--dropout", &TrainConfig::dropout,
          "Dropout probability: the transformer's embeddings and sublayer outputs, or the mlp "
          "model's hidden units");
    o.add(t, "--optimizer", &TrainConfig::optimizer, "adamw, adam or sgd (sgd's momentum is beta1)");
    o.add(t, "--lr", &TrainConfig::lr, "Learning rate after warm-up");
    o.add(t, "--wd", &TrainConfig::wd, "Weight decay (decoupled for adamw)");
    
    betas_option_ =
        add_number_option(&t, "--betas", betas_, "Adam betas: two numbers")
            ->expected(2)
            ->capture_default_str();
    o.add(t, "--warmup", &TrainConfig::warmup, "Linear warm-up steps (lr = base * min(step/warmup, 1))");
    o.add(t, "--schedule", &TrainConfig::schedule, "After warm-up: constant or cosine");
    o.add(t, "--clip", &TrainConfig::clip, "Clip the gradient's global norm to this; 0 = off");
    o.add(t, "--batch", &TrainConfig::batch, "Minibatch size; 0 = the whole training set, -1 = min(512, ceil(N/2))");
    o.add(t, "--steps", &TrainConfig::steps, "Optimiser steps");
    o.add(t, "--eval-every", &TrainConfig::eval_every, "Steps between evals (metrics rows)");
    o.add(t, "--checkpoint-every", &TrainConfig::checkpoint_every, "Steps between checkpoints");
    o.add(t, "--seed", &TrainConfig::seed, "Seed of the split, the weights and the batches");
    o.add(t, "--threads", &TrainConfig::threads, "CPU threads; 0 = every core");
    o.add(t, "--device", &TrainConfig::device, "cpu (cuda when built with the CUDA backend)");
    o.add(t, "--cuda-graph", &TrainConfig::cuda_graph,
          "With --device cuda: record the training step once and replay it as a CUDA graph. "
          "auto: where the run's flags allow it; on: also fail where they do not; off: never "
          "(for debugging: results are equal either way)");
    o.add_flag(t, "--stop-at-grok", &TrainConfig::stop_at_grok,
               "Stop once test accuracy has held >= 99% for --grok-patience evals");
    o.add(t, "--grok-patience", &TrainConfig::grok_patience, "Evals in a row for --stop-at-grok");
    o.add(t, "--init", &TrainConfig::init, "Start from this checkpoint's weights");
    o.add(t, "--snapshot-every", &TrainConfig::snapshot_every,
          "Save the model's weights to RUN/snapshots/ at every eval at a multiple of this step "
          "(for tinygrok analyze); 0 = off");
    // Training variants (REFERENCE §2).
    o.add(t, "--grokfast", &TrainConfig::grokfast,
          "Grokfast gradient filter (Lee et al. 2024): none, ema or ma");
    o.add(t, "--grokfast-alpha", &TrainConfig::grokfast_alpha, "Grokfast EMA decay, in [0, 1)");
    o.add(t, "--grokfast-lamb", &TrainConfig::grokfast_lamb,
          "Grokfast amplification: g + lamb * filtered g; 0 = the method's default (ema 2, ma 5)");
    o.add(t, "--grokfast-window", &TrainConfig::grokfast_window, "Grokfast MA window, in steps");
    o.add(t, "--loss", &TrainConfig::loss,
          "softmax or stablemax (cross-entropy with StableMax, Prieto et al. 2025), in training "
          "and in the evals");
    o.add_flag(t, "--orthogonal-grad", &TrainConfig::orthogonal_grad,
               "⊥Grad (Prieto et al. 2025): step along each gradient's part orthogonal to its "
               "weights, rescaled to the gradient's norm");
    o.add(t, "--init-scale", &TrainConfig::init_scale,
          "Omnigrok: multiply the fresh initial weights by this");
    o.add_flag(t, "--weight-norm-constraint", &TrainConfig::weight_norm_constraint,
               "Omnigrok: after every step, rescale the weights to their global norm at step 0 "
               "(usually with --wd 0)");
    o.add(t, "--wd-target", &TrainConfig::wd_target,
          "Weight decay pulls toward zero or toward the initial weights (init)");
    o.add(t, "--track", &TrainConfig::track,
          "Analyses at every eval into RUN/analysis_track.csv: a comma-separated list of "
          "sharpness, collapse, fourier");
    
    t.add_option("--out", options_.out, "Run directory (default: runs/PRESET-DATE-TIME)");
    t.add_option("--resume", options_.out, "Continue the run in this directory from its checkpoint")
        ->excludes("--out");
    t.add_flag("--force", options_.force, "Replace an existing run directory");
    t.add_flag("--quiet", options_.quiet, "No progress output");
  }

  CLI::App* app() const override { return app_; }

  int run() override {
    options_.resume = app_->get_option("--resume")->count() > 0;
    if (options_.resume) {  // the flags that run_train's own check cannot see
      for (const char* flag : {"--preset", "--betas"})
        check(app_->get_option(flag)->count() == 0, "--resume: ", flag,
              " cannot change a run in progress", kOnlyThoseMayChange);
      check(!options_.force, "--force: has no effect with --resume (it replaces a run; a resumed "
            "run continues its own)");
    }
    return run_train(preset_name_, overrides_, betas_, betas_option_, options_);
  }

 private:
  CLI::App* app_ = nullptr;
  std::string preset_name_ = "default";
  Overrides overrides_;
  std::vector<double> betas_{0.9, 0.98};
  CLI::Option* betas_option_ = nullptr;
  RunOptions options_;
};

}  // namespace

std::unique_ptr<Command> make_train_command(CLI::App& parent) {
  return std::make_unique<TrainCommand>(parent);
}

}  // namespace tg::grok::cli
