// `tinygrok eval CHECKPOINT`: a checkpoint's loss and accuracy on train, test and all pairs, as JSON.
#include <filesystem>
#include <iostream>

#include "grok/checkpoint.h"
#include "grok/cli/command.h"
#include "grok/config.h"
#include "grok/metrics.h"
#include "grok/split.h"
#include "grok/trainer.h"

namespace tg::grok::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

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
    validate_data_and_model(config);  // before it sizes a dataset or a model
  } catch (const json::exception&) {
    throw Error(cat("eval: checkpoint ", path, ": the configuration in its metadata is not JSON"));
  } catch (const Error& e) {
    throw Error(cat("eval: checkpoint ", path, ": the configuration in its metadata: ", e.what()));
  }
  const Dataset data = make_dataset(parse_operation(config.op), config.p);
  std::string split_path = find_split(path);
  if (split_path.empty() && !config.split_file.empty()) split_path = config.split_file;
  const Split split = split_path.empty() ? random_split(data, config.frac, config.seed)
                                         : read_split(split_path, data);
  Generator gen(config.seed);
  std::shared_ptr<nn::Model> model = build_model(config, data, gen);
  try {
    model->load_state_dict(
        std::map<std::string, Tensor>(checkpoint.model.begin(), checkpoint.model.end()));
  } catch (const Error& e) {
    throw Error(cat("eval: checkpoint ", path, " does not fit its run's model: ", e.what()));
  }
  const TokenFormat format = token_format(config);
  const LossKind loss = parse_loss(config.loss);  // the loss the run trained on, as metrics.csv
  auto measure = [&](const std::vector<int64_t>& pairs) {
    const LossAccuracy m =
        evaluate(*model, make_tokens(data, pairs, format), make_labels(data, pairs), loss);
    return json{{"loss", m.loss}, {"accuracy", m.accuracy}, {"pairs", pairs.size()}};
  };
  json out;
  out["checkpoint"] = path;
  out["step"] = checkpoint.run_state.count("step")
                    ? metadata_number<int64_t>(checkpoint.run_state, "step", path)
                    : 0;
  out["split"] = split_path.empty() ? "regenerated from the seed" : split_path;
  out["train"] = measure(split.train);
  out["test"] = measure(split.test);
  out["all"] = measure(data.pairs);
  std::cout << out.dump(2) << std::endl;
  return 0;
}

class EvalCommand : public Command {
 public:
  explicit EvalCommand(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "eval", "Print a checkpoint's loss and accuracy on train, test and all pairs, as JSON");
    app_->add_option("checkpoint", path_,
                     "A run directory, its checkpoint/ directory, or a model.safetensors")
        ->required();
  }
  CLI::App* app() const override { return app_; }
  int run() override { return run_eval(path_); }

 private:
  CLI::App* app_ = nullptr;
  std::string path_;
};

}  // namespace

std::unique_ptr<Command> make_eval_command(CLI::App& parent) {
  return std::make_unique<EvalCommand>(parent);
}

}  // namespace tg::grok::cli
