// tinygrok: the command line. `tinygrok train` runs a grokking experiment from a preset plus
// flags; `tinygrok eval CHECKPOINT` prints a checkpoint's loss and accuracy as JSON.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "grok/checkpoint.h"
#include "grok/config.h"
#include "grok/metrics.h"
#include "grok/split.h"
#include "grok/trainer.h"

using namespace tg;
using namespace tg::grok;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string default_out(const std::string& preset_name) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/" + preset_name + "-" + stamp;
}

// Each training flag writes into `flags`; after parsing, the flags actually given are copied
// over the chosen preset, so `--preset nanda --wd 0.3` is Nanda's setup with weight decay 0.3.
struct Overrides {
  TrainConfig flags = preset("default");
  std::vector<std::pair<CLI::Option*, std::function<void(TrainConfig&)>>> copies;

  template <typename T>
  void add(CLI::App& app, const std::string& name, T TrainConfig::*field, const std::string& help) {
    CLI::Option* option = app.add_option(name, flags.*field, help)->capture_default_str();
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
  if (options.resume) {
    // A resumed run keeps its saved configuration; only its length and threads may change.
    std::ifstream in(fs::path(options.out) / "config.json");
    check(in.good(), "--resume: ", options.out, " is not a run directory (no config.json)");
    json saved;
    try {
      in >> saved;
    } catch (const json::exception&) {
      throw Error(cat("--resume: ", options.out, "/config.json is not valid JSON"));
    }
    config = config_from_json(saved);
    std::vector<std::string> given;
    TrainConfig changed = config;
    overrides.apply(changed, &given);
    for (const std::string& flag : given)
      check(flag == "--steps" || flag == "--threads" || flag == "--eval-every", "--resume: ", flag,
            " cannot change a run in progress (only --steps, --threads and --eval-every can)");
    config = changed;
  } else {
    config = preset(preset_name);
    overrides.apply(config);
    if (betas_option->count() > 0) {
      config.beta1 = betas[0];
      config.beta2 = betas[1];
    }
    if (options.out.empty()) options.out = default_out(config.preset);
  }
  const RunStatus status = train(config, options);
  std::fprintf(stderr, "%s: metrics in %s/metrics.csv, curves in %s/curves.png, summary in "
               "%s/summary.json\n", status_name(status), options.out.c_str(), options.out.c_str(),
               options.out.c_str());
  return exit_code(status);
}

// The run directory's split.txt for a checkpoint at `path` (a run dir, checkpoint dir or file).
// Only the run directory's own split.txt counts: RUN/, RUN/checkpoint/ or RUN/checkpoint/FILE.
std::string find_split(const std::string& path) {
  fs::path p = fs::absolute(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "RUN/checkpoint/" names RUN/checkpoint
  const bool is_run_dir = fs::is_directory(p) && fs::exists(p / "config.json");
  const fs::path run_dir = is_run_dir                ? p
                           : fs::is_regular_file(p) ? p.parent_path().parent_path()
                                                    : p.parent_path();
  return fs::exists(run_dir / "split.txt") ? (run_dir / "split.txt").string() : "";
}

int run_eval(const std::string& path) {
  const Checkpoint checkpoint = load_checkpoint(path);
  auto config_it = checkpoint.run_state.find("config");
  check(config_it != checkpoint.run_state.end(), "eval: checkpoint ", path,
        " has no training configuration in its metadata");
  TrainConfig config;
  try {
    config = config_from_json(json::parse(config_it->second));
  } catch (const json::exception&) {
    throw Error(cat("eval: checkpoint ", path, ": the configuration in its metadata is not JSON"));
  }
  const Dataset data = make_dataset(parse_operation(config.op), config.p);
  std::string split_path = find_split(path);
  if (split_path.empty() && !config.split_file.empty()) split_path = config.split_file;
  const Split split = split_path.empty() ? random_split(data, config.frac, config.seed)
                                         : read_split(split_path, data);
  Generator gen(config.seed);
  std::shared_ptr<nn::Model> model = build_model(config, data, gen);
  model->load_state_dict(std::map<std::string, Tensor>(checkpoint.model.begin(), checkpoint.model.end()));
  const TokenFormat format = token_format(config);
  auto measure = [&](const std::vector<int64_t>& pairs) {
    const LossAccuracy m = evaluate(*model, make_tokens(data, pairs, format), make_labels(data, pairs));
    return json{{"loss", m.loss}, {"accuracy", m.accuracy}, {"pairs", pairs.size()}};
  };
  json out;
  out["checkpoint"] = path;
  out["step"] = std::stoll(checkpoint.run_state.count("step") ? checkpoint.run_state.at("step") : "0");
  out["split"] = split_path.empty() ? "regenerated from the seed" : split_path;
  out["train"] = measure(split.train);
  out["test"] = measure(split.test);
  out["all"] = measure(data.pairs);
  std::cout << out.dump(2) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tinygrok: watch a network memorise modular arithmetic, then generalise"};
  app.require_subcommand(1);
  // One line, like every other error of tinygrok (CLI11's default adds a second).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("tinygrok: ") + e.what() + " (see --help)\n";
  });

  CLI::App* train_cmd = app.add_subcommand(
      "train", "Train a model and record the grokking curves. Flags override the preset; "
               "the defaults shown are those of the default preset.");
  std::string preset_name = "default";
  std::string presets;
  for (const std::string& n : preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  train_cmd->add_option("--preset", preset_name, "Starting configuration: " + presets)
      ->capture_default_str();
  Overrides o;
  CLI::App& t = *train_cmd;
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
  o.add(t, "--dropout", &TrainConfig::dropout, "Dropout probability in the transformer");
  o.add(t, "--optimizer", &TrainConfig::optimizer, "adamw, adam or sgd (sgd's momentum is beta1)");
  o.add(t, "--lr", &TrainConfig::lr, "Learning rate after warm-up");
  o.add(t, "--wd", &TrainConfig::wd, "Weight decay (decoupled for adamw)");
  std::vector<double> betas{0.9, 0.98};
  CLI::Option* betas_option =
      t.add_option("--betas", betas, "Adam betas: two numbers")->expected(2)->capture_default_str();
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
  o.add_flag(t, "--stop-at-grok", &TrainConfig::stop_at_grok,
             "Stop once test accuracy has held >= 99% for --grok-patience evals");
  o.add(t, "--grok-patience", &TrainConfig::grok_patience, "Evals in a row for --stop-at-grok");
  o.add(t, "--init", &TrainConfig::init, "Start from this checkpoint's weights");
  RunOptions options;
  t.add_option("--out", options.out, "Run directory (default: runs/PRESET-DATE-TIME)");
  t.add_option("--resume", options.out, "Continue the run in this directory from its checkpoint")
      ->excludes("--out");
  t.add_flag("--force", options.force, "Replace an existing run directory");
  t.add_flag("--quiet", options.quiet, "No progress output");

  CLI::App* eval_cmd = app.add_subcommand(
      "eval", "Print a checkpoint's loss and accuracy on train, test and all pairs, as JSON");
  std::string checkpoint_path;
  eval_cmd->add_option("checkpoint", checkpoint_path,
                       "A run directory, its checkpoint/ directory, or a model.safetensors")
      ->required();

  CLI11_PARSE(app, argc, argv);
  try {
    if (train_cmd->parsed()) {
      options.resume = t.get_option("--resume")->count() > 0;
      if (options.resume)  // the flags that run_train's own check cannot see
        for (const char* flag : {"--preset", "--betas"})
          check(t.get_option(flag)->count() == 0, "--resume: ", flag, " cannot change a run in "
                "progress (only --steps, --threads and --eval-every can)");
      return run_train(preset_name, o, betas, betas_option, options);
    }
    return run_eval(checkpoint_path);
  } catch (const tg::Error& e) {
    std::fprintf(stderr, "tinygrok: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tinygrok: %s\n", e.what());
    return 2;
  }
}
