// The training run: set up data, model and optimiser; loop over steps with evals, metrics,
// checkpoints and a progress bar; finish with summary.json and curves.png.
#include "grok/trainer.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "autograd/ops.h"
#include "core/denormal.h"
#include "grok/analysis/eval_tracker.h"
#include "grok/atomic_write.h"
#include "grok/batch_sampler.h"
#include "grok/checkpoint.h"
#include "grok/device_step.h"
#include "grok/loss.h"
#include "grok/metrics.h"
#include "grok/plot.h"
#include "grok/progress.h"
#include "grok/run_lock.h"
#include "grok/run_evaluator.h"
#include "grok/split.h"
#include "grok/step_capture.h"
#include "grok/train_variants.h"
#include "kernels/backend.h"
#include "nn/one_hot_mlp.h"
#include "nn/transformer.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "optim/weight_norm_control.h"

namespace tg::grok {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::atomic<bool> stop_requested{false};
extern "C" void on_interrupt(int) { stop_requested = true; }

constexpr double kGrokAccuracy = 0.99;  // T_m and T_g: the first eval at or above this accuracy

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// TG_PROFILE_STEP=N: the step (counted from 1, over the run's sessions) that runs alone inside
// the device's profiler range (Backend::profiler_range), so that `ncu --profile-from-start off`
// profiles one step's kernels (scripts/device_check.sh's ncu_sections); 0 when unset.
int64_t profiled_step() {
  const char* value = std::getenv("TG_PROFILE_STEP");
  if (value == nullptr || *value == '\0') return 0;
  char* end = nullptr;
  errno = 0;
  const long long step = std::strtoll(value, &end, 10);
  check(*end == '\0' && errno == 0 && step >= 1,
        "TG_PROFILE_STEP: expected a step number >= 1, got '", value, "'");
  return step;
}

// Adds the wall time of its scope to a total.
class AddWallTime {
 public:
  explicit AddWallTime(double& total) : total_(total) {}
  ~AddWallTime() { total_ += seconds_since(start_); }
  AddWallTime(const AddWallTime&) = delete;
  AddWallTime& operator=(const AddWallTime&) = delete;

 private:
  double& total_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& c,
                                                 const std::vector<Tensor>& params) {
  const double wd = optimizer_weight_decay(c);  // 0 when decaying toward theta_0 (TrainVariants)
  if (c.optimizer == "adam") return std::make_unique<optim::Adam>(params, c.lr, c.beta1, c.beta2, 1e-8, wd);
  if (c.optimizer == "sgd") return std::make_unique<optim::SGD>(params, c.lr, c.beta1, wd);
  return std::make_unique<optim::AdamW>(params, c.lr, c.beta1, c.beta2, 1e-8, wd);
}

// What optimizer.safetensors holds: the optimiser's buffers, then the training variants' state.
std::vector<std::pair<std::string, Tensor>> optimizer_checkpoint_state(
    const optim::Optimizer& optimizer, const TrainVariants& variants) {
  std::vector<std::pair<std::string, Tensor>> out = optimizer.state();
  for (auto& entry : variants.state()) out.push_back(std::move(entry));
  return out;
}

// What a checkpoint must remember beyond the tensors for a resumed run to continue exactly.
struct RunState {
  int64_t step = 0;
  int64_t t_m = -1, t_g = -1;  // -1: not reached yet
  int64_t grok_streak = 0;     // consecutive evals at test accuracy >= 99%
  double elapsed_s = 0;        // wall time of the run so far, over all its sessions
  double train_seconds = 0;    // time inside training steps only
  int64_t timed_steps = 0;
  double eval_seconds = 0;        // inside evals (both sets, a metrics row, analyses, snapshots)
  double checkpoint_seconds = 0;  // checking the weights and writing checkpoints
  // The random streams and the optimiser's step count, captured by save().
  int64_t optimizer_steps = 0;
  uint64_t sampler_offset = 0;
  int64_t sampler_position = 0;
  uint64_t generator_offset = 0;

  std::map<std::string, std::string> to_metadata() const {
    return {{"step", std::to_string(step)},
            {"t_m", std::to_string(t_m)},
            {"t_g", std::to_string(t_g)},
            {"grok_streak", std::to_string(grok_streak)},
            {"elapsed_s", json(elapsed_s).dump()},
            {"train_seconds", json(train_seconds).dump()},
            {"timed_steps", std::to_string(timed_steps)},
            {"eval_seconds", json(eval_seconds).dump()},
            {"checkpoint_seconds", json(checkpoint_seconds).dump()},
            {"optimizer_steps", std::to_string(optimizer_steps)},
            {"sampler_offset", std::to_string(sampler_offset)},
            {"sampler_position", std::to_string(sampler_position)},
            {"generator_offset", std::to_string(generator_offset)}};
  }
  static RunState from_metadata(const std::map<std::string, std::string>& m, const std::string& where) {
    const auto count = [&](const char* key) {  // a count of steps: never negative
      const auto n = metadata_number<int64_t>(m, key, where);
      check(n >= 0, "checkpoint ", where, ": metadata '", key, "' is ", n, ", a negative count");
      return n;
    };
    RunState s;
    s.step = count("step");
    s.t_m = metadata_number<int64_t>(m, "t_m", where);
    s.t_g = metadata_number<int64_t>(m, "t_g", where);
    s.grok_streak = count("grok_streak");
    s.elapsed_s = metadata_number<double>(m, "elapsed_s", where);
    s.train_seconds = metadata_number<double>(m, "train_seconds", where);
    s.timed_steps = count("timed_steps");
    // Checkpoints from before 2026-12-01 have neither: their runs' time so far counts as other.
    for (auto [key, seconds] : {std::pair{"eval_seconds", &s.eval_seconds},
                                std::pair{"checkpoint_seconds", &s.checkpoint_seconds}})
      if (m.count(key) != 0) *seconds = metadata_number<double>(m, key, where);
    s.optimizer_steps = count("optimizer_steps");
    s.sampler_offset = metadata_number<uint64_t>(m, "sampler_offset", where);
    s.sampler_position = count("sampler_position");
    s.generator_offset = metadata_number<uint64_t>(m, "generator_offset", where);
    return s;
  }
};

// Checkpoint tensors as they are saved (host copies of device tensors; CPU tensors as they are)
// and as they are loaded (copies on the run's device).
std::vector<std::pair<std::string, Tensor>> on_host(
    std::vector<std::pair<std::string, Tensor>> tensors) {
  for (auto& [name, t] : tensors) t = t.to(Device::cpu());
  return tensors;
}
std::map<std::string, Tensor> on_device(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                        Device device) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors) out.emplace(name, t.to(device));
  return out;
}

// A checkpoint resumes only the run that wrote it: its saved configuration must equal this one
// but for what a resume may change.
void check_same_run(const std::map<std::string, std::string>& run_state,
                    const TrainConfig& config, const std::string& where) {
  auto it = run_state.find("config");
  check(it != run_state.end(), "checkpoint ", where, ": metadata has no 'config'");
  json saved;
  try {
    saved = json::parse(it->second);
  } catch (const json::exception&) {
    throw Error(cat("checkpoint ", where, ": the configuration in its metadata is not JSON"));
  }
  const json current = to_json(config);
  // A key missing there is a field added after that run started: it ran with the default.
  const json defaults = to_json(TrainConfig{});
  for (const auto& [key, value] : current.items()) {
    if (key == "steps" || key == "threads" || key == "eval_every" || key == "cuda_graph" ||
        key == "device")
      continue;
    const json& there = saved.contains(key) ? saved[key] : defaults[key];
    check(there == value, "--resume: checkpoint ", where, " was written by a different run (",
          key, ": ", there.dump(), " there, ", value.dump(), " here)");
  }
}

// Whether `inner` is `outer` or lies inside it (both absolute and normalised).
bool is_within(const fs::path& inner, const fs::path& outer) {
  const auto [stop, _] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
  return stop == outer.end();
}

// Makes a new run's directory before anything is written into it, and locks it for this run: a
// run another train is writing is not replaced.
RunLock prepare_run_dir(const RunOptions& options) {
  const fs::path dir(options.out);
  check(!fs::exists(dir) || fs::is_directory(dir), "--out: ", options.out,
        " is a file, not a directory");
  if (fs::exists(dir) && !fs::is_empty(dir)) {
    const bool is_run = fs::exists(dir / "config.json");
    check(options.force, "--out: ", is_run ? "run directory " : "", options.out,
          " already exists",
          is_run ? "; pass --resume to continue the run there or --force to replace it"
                 : " and is not empty (and not a run); choose another --out");
    // --force replaces a run, never anything else: not a directory a mistyped --out names,
    // nor one that holds the working directory (".", an ancestor).
    check(is_run, "--out: ", options.out, " is not a tinygrok run (no config.json); --force "
          "replaces only a run directory: choose another --out");
    check(!is_within(fs::weakly_canonical(fs::current_path()), fs::weakly_canonical(dir)),
          "--out: ", options.out, " holds the working directory; --force will not delete it");
    const RunLock replaced(options.out, "--out");
    fs::remove_all(dir);
  }
  std::error_code error;
  fs::create_directories(dir, error);
  check(!error, "--out: cannot create ", options.out, ": ", error.message());
  return RunLock(options.out, "--out");
}

}  // namespace

int exit_code(RunStatus status) {
  switch (status) {
    case RunStatus::Completed:
    case RunStatus::Grokked: return 0;
    case RunStatus::Interrupted: return 130;  // the shell's convention after Ctrl-C
    case RunStatus::NanLoss: return 3;
  }
  return 1;
}

const char* status_name(RunStatus status) {
  switch (status) {
    case RunStatus::Completed: return "completed";
    case RunStatus::Grokked: return "grokked";
    case RunStatus::Interrupted: return "interrupted";
    case RunStatus::NanLoss: return "nan_loss";
  }
  return "?";
}

void request_stop() { stop_requested = true; }

TokenFormat token_format(const TrainConfig& c) {
  if (c.tokens == "ab") return TokenFormat::AB;
  if (c.tokens == "aopbeq") return TokenFormat::AOpBEq;
  return TokenFormat::ABEq;
}

namespace {
nn::TransformerConfig transformer_config(const TrainConfig& c, const Dataset& data) {
  const TokenFormat format = token_format(c);
  nn::TransformerConfig t;
  t.d_vocab = vocab_size(format, data.p);
  t.d_vocab_out = data.p;
  t.n_ctx = context_length(format);
  t.d_model = c.d_model;
  t.n_heads = c.heads;
  t.d_head = c.d_model / c.heads;
  t.d_mlp = c.d_mlp;
  t.n_layers = c.layers;
  t.act = nn::parse_activation(c.act);
  t.ln = nn::parse_layer_norm_mode(c.ln);
  t.dropout = c.dropout;
  return t;
}
}  // namespace

double model_parameter_count(const TrainConfig& c, const Dataset& data) {
  return c.model == "mlp" ? nn::OneHotMLP::parameter_count(data.p, c.d_mlp)
                          : nn::parameter_count(transformer_config(c, data));
}

std::shared_ptr<nn::Model> build_model(const TrainConfig& c, const Dataset& data, Generator& gen) {
  // Counted before anything is allocated: a mistyped size (--layers 100000000) would otherwise
  // fill memory a layer at a time before failing.
  const double count = model_parameter_count(c, data);
  if (count > kMaxParameters)
    throw Error(cat("the ", c.model, " model would have ", count, " parameters (",
                    c.model == "mlp" ? cat("--d-mlp ", c.d_mlp)
                                     : cat("--layers ", c.layers, ", --d-model ", c.d_model,
                                           ", --d-mlp ", c.d_mlp),
                    "); at most 2^31 = ", static_cast<int64_t>(kMaxParameters), " are allowed"));
  if (c.model == "mlp")
    return std::make_shared<nn::OneHotMLP>(data.p, c.d_mlp, nn::parse_activation(c.act), gen,
                                           c.dropout);
  return std::make_shared<nn::Transformer>(transformer_config(c, data), gen);
}

namespace {

// The device --device names; an error naming --device for one this build or machine lacks.
Device run_device(const TrainConfig& config, const RunOptions& options) {
  try {
    const Device device = parse_device(config.device);
    backend_for(device);  // a clear error for a device this build or machine lacks
    return device;
  } catch (const Error& e) {
    throw Error(cat("--device: ", e.what(),
                    options.resume ? "; --device can move a run (--device cpu: on the CPU)" : ""));
  }
}

// --batch 0 is the full training set; -1 half of it, at most 512.
int64_t batch_size_of(const TrainConfig& config, int64_t n_train) {
  const int64_t batch_size = config.batch == 0    ? n_train
                             : config.batch == -1 ? std::min<int64_t>(512, (n_train + 1) / 2)
                                                  : config.batch;
  check(batch_size <= n_train, "--batch: ", batch_size, " is larger than the training set (",
        n_train, " pairs)");
  return batch_size;
}

// The step on the host's watch (the CPU, and every run whose step cannot stay on the device):
// returns the loss, read at once; a non-finite one returns before the update, which is not made.
double host_step(nn::Model& model, optim::Optimizer& optimizer, TrainVariants& variants,
                 LossKind loss_kind, const Tensor& tokens, const Tensor& labels,
                 const std::vector<Tensor>& params, double clip) {
  const Tensor loss = loss_of(loss_kind, model.forward(tokens), labels);
  const double loss_value = loss.item();
  if (!std::isfinite(loss_value)) return loss_value;
  optimizer.zero_grad();
  loss.backward();
  // The filters (Grokfast, ⊥Grad) transform the loss's own gradient, so they come straight
  // after backward: Grokfast's memory must hold raw gradients, not clipped ones. Clipping then
  // bounds what the optimiser actually receives (Grokfast can amplify it (1 + lamb)-fold).
  variants.filter_gradients();
  if (clip > 0) optim::clip_grad_norm(params, clip);
  variants.before_step(optimizer.lr());
  optimizer.step();
  variants.after_step();
  return loss_value;
}

// summary.json: how the run ended, T_m and T_g, its last metrics row, its time.
json run_summary(RunStatus status, const RunState& state, int64_t batch_size,
                 const std::vector<MetricsRow>& rows, double wall_seconds) {
  json summary;
  summary["status"] = status_name(status);
  summary["steps"] = state.step;
  summary["batch_size"] = batch_size;
  summary["T_m"] = state.t_m >= 0 ? json(state.t_m) : json(nullptr);
  summary["T_g"] = state.t_g >= 0 ? json(state.t_g) : json(nullptr);
  summary["ratio"] = state.t_m > 0 && state.t_g >= 0
                         ? json(static_cast<double>(state.t_g) / static_cast<double>(state.t_m))
                         : json(nullptr);
  if (!rows.empty()) {
    const MetricsRow& f = rows.back();
    summary["final"] = {{"step", f.step},           {"train_loss", f.train_loss},
                        {"train_acc", f.train_acc}, {"test_loss", f.test_loss},
                        {"test_acc", f.test_acc},   {"weight_norm", f.weight_norm}};
  }
  summary["wall_seconds"] = wall_seconds;
  // Where the wall time went; other: the loop's own work, a NaN's or an interrupt's wait, the end.
  summary["wall_seconds_by_part"] = {
      {"steps", state.train_seconds},
      {"evals", state.eval_seconds},
      {"checkpoints", state.checkpoint_seconds},
      {"other",
       wall_seconds - state.train_seconds - state.eval_seconds - state.checkpoint_seconds}};
  summary["train_ms_per_step"] =
      state.timed_steps > 0 ? 1000 * state.train_seconds / state.timed_steps : 0.0;
  return summary;
}

}  // namespace

RunStatus train(const TrainConfig& config, const RunOptions& options) {
  // --- everything that can fail on bad input, before the run directory is touched -----------
  validate(config);
  const int64_t profiled = profiled_step();
  RunLock lock;  // held until train returns
  if (options.resume) {
    check(fs::exists(fs::path(options.out) / "config.json"), "--resume: ", options.out,
          " is not a run directory (no config.json)");
    lock = RunLock(options.out, "--resume");  // before its checkpoint is read
  }
  const Device device = run_device(config, options);
  const Dataset data = make_dataset(parse_operation(config.op), config.p);
  // A resumed run reads its own split.txt: the --split file it started from may have moved.
  const std::string split_file =
      options.resume ? (fs::path(options.out) / "split.txt").string() : config.split_file;
  const Split split = split_file.empty() ? random_split(data, config.frac, config.seed)
                                         : read_split(split_file, data);
  const int64_t n_train = static_cast<int64_t>(split.train.size());
  const int64_t batch_size = batch_size_of(config, n_train);
  Checkpoint resume_from;
  if (options.resume) resume_from = load_checkpoint(options.out);
  // --init matters only at the start: a resumed run has its own weights (and the --init
  // checkpoint may be gone by then).
  const bool use_init = !config.init.empty() && !options.resume;
  Checkpoint init_from;
  if (use_init) init_from = load_checkpoint(config.init);

  if (config.threads > 0) omp_set_num_threads(config.threads);
  // After the thread count, so that the pool's threads get the mode too (core/denormal.h: late
  // in a run, denormal gradients made steps ~25% slower).
  const FlushDenormalGuard flush_denormal;
  const TokenFormat format = token_format(config);
  // Everything the steps and evals read lives on the device: data, weights, optimiser state.
  const Tensor train_tokens = make_tokens(data, split.train, format).to(device);
  const Tensor train_labels = make_labels(data, split.train).to(device);
  const Tensor test_tokens = make_tokens(data, split.test, format).to(device);
  const Tensor test_labels = make_labels(data, split.test).to(device);

  // The model generator draws the initial weights, then dropout masks as training goes.
  Generator model_gen(config.seed);
  std::shared_ptr<nn::Model> model = build_model(config, data, model_gen);
  // Omnigrok's scaled start; only fresh weights (validate() rejects it with --init), and a
  // resumed run loads its own over them.
  if (config.init_scale != 1) optim::scale_weights(model->parameters(), config.init_scale);
  if (use_init) {
    std::map<std::string, Tensor> weights(init_from.model.begin(), init_from.model.end());
    try {
      model->load_state_dict(weights);
    } catch (const Error& e) {
      throw Error(cat("--init: checkpoint ", config.init, " does not fit this model: ", e.what()));
    }
  }
  model->to(device);  // drawn (or loaded) on the host, so a seed gives the same weights anywhere
  const std::vector<Tensor> params = model->parameters();
  std::unique_ptr<optim::Optimizer> optimizer = make_optimizer(config, params);
  TrainVariants variants(config, params);  // theta_0 and the norm to hold: the weights right now
  const LossKind loss_kind = parse_loss(config.loss);
  optim::LrSchedule schedule;
  schedule.base_lr = config.lr;
  schedule.warmup_steps = config.warmup;
  schedule.kind = optim::parse_schedule(config.schedule);
  schedule.total_steps = config.steps;
  BatchSampler sampler(split.train, batch_size, config.seed);  // derives its own stream

  RunState state;
  if (options.resume) {
    const std::string where = checkpoint_dir(options.out);
    state = RunState::from_metadata(resume_from.run_state, where);
    check_same_run(resume_from.run_state, config, where);
    check(config.steps >= state.step, "--steps: ", config.steps, " is before the checkpoint in ",
          where, " (step ", state.step, ")");
    try {
      model->load_state_dict(on_device(resume_from.model, device));
      std::map<std::string, Tensor> optimizer_state = on_device(resume_from.optimizer, device);
      variants.load_state(optimizer_state);  // takes its entries out, leaves the optimiser's
      optimizer->load_state(optimizer_state, state.optimizer_steps);
      sampler.restore(state.sampler_offset, state.sampler_position);
    } catch (const Error& e) {
      throw Error(cat("--resume: checkpoint ", where, " does not fit this run: ", e.what()));
    }
    model_gen.set_state(config.seed, state.generator_offset);
  }

  // On a GPU, a step whose flags allow it keeps everything on the device (grok/step_capture.h):
  // Adam counts its steps there, the loss is summed there and checked whenever the host waits
  // anyway (evals, checkpoints), and the step can be recorded once as a CUDA graph and replayed.
  // With --cuda-graph off the same step runs eagerly, so the two give equal results.
  const bool full_batch = batch_size == n_train;
  const int64_t batches_per_epoch = n_train / batch_size;  // (the partial batch is dropped)
  const std::string capture_blocker = why_step_cannot_be_captured(config, batches_per_epoch);
  const CudaGraphMode graph_mode = parse_cuda_graph(config.cuda_graph);
  check(graph_mode != CudaGraphMode::On || capture_blocker.empty(),
        "--cuda-graph on: this run's step cannot be recorded (", capture_blocker, ")");
  const bool step_on_device = !device.is_cpu() && capture_blocker.empty();
  const bool record_step = step_on_device && graph_mode != CudaGraphMode::Off;
  if (step_on_device) optimizer->keep_step_on_device(schedule.rule());

  // --- the run directory --------------------------------------------------------------------
  if (!options.resume) lock = prepare_run_dir(options);
  if (!options.quiet)  // only now: a bad flag's error is the one line printed
    std::fprintf(stderr, "tinygrok train: preset %s, %s, %s model, %lld parameters, %s %s\n",
                 config.preset.c_str(), task_name(data.op, data.p).c_str(),
                 config.model.c_str(), static_cast<long long>(model->num_parameters()),
                 options.resume ? "resuming" : "run directory", options.out.c_str());
  if (!options.quiet && !device.is_cpu())
    std::fprintf(stderr, "tinygrok train: the step %s\n",
                 record_step ? "is recorded once as a CUDA graph and replayed"
                 : step_on_device ? "stays on the device (--cuda-graph off: not recorded)"
                 : cat("is not recorded as a CUDA graph (", capture_blocker, ")").c_str());
  const fs::path dir(options.out);
  if (!options.resume) {
    write_file_atomically((dir / "config.json").string(), to_json(config).dump(2) + "\n", "train");
    write_split(dir / "split.txt", split);
  }
  // A resume reads and checks both logs before it rewrites either (rows after the checkpoint
  // belong to steps that will be redone): a refused resume leaves both whole.
  std::vector<MetricsRow> kept_rows;
  if (options.resume)
    for (const MetricsRow& r : MetricsLog::read((dir / "metrics.csv").string()))
      if (r.step <= state.step) kept_rows.push_back(r);
  std::unique_ptr<analysis::EvalTracker> tracker;  // --track: analyses at every eval
  if (!config.track.empty())
    tracker = std::make_unique<analysis::EvalTracker>((dir / "analysis_track.csv").string(),
                                                      config, data.p, options.resume, state.step);
  MetricsLog metrics((dir / "metrics.csv").string(), kept_rows);
  Progress progress(config.steps, options.quiet ? nullptr : stderr);

  // --- what the loop does: checkpoints, snapshots, evals, NaN stops, the steps --------------
  const auto session_start = std::chrono::steady_clock::now();
  const double elapsed_before = state.elapsed_s;
  auto elapsed = [&] { return elapsed_before + seconds_since(session_start); };
  int64_t last_checkpoint = options.resume ? state.step : -1;

  auto save = [&] {
    state.elapsed_s = elapsed();
    state.optimizer_steps = optimizer->steps();
    state.sampler_offset = sampler.generator_offset();
    state.sampler_position = sampler.position();
    state.generator_offset = model_gen.offset();
    std::map<std::string, std::string> meta = state.to_metadata();
    meta["format"] = "tinygrok-checkpoint-1";
    meta["config"] = to_json(config).dump();
    save_checkpoint(options.out, {on_host(model->named_parameters()),
                                  on_host(optimizer_checkpoint_state(*optimizer, variants)), meta});
    last_checkpoint = state.step;
  };

  int64_t last_snapshot = -1;
  auto snapshot = [&] {
    save_snapshot(options.out, state.step, on_host(model->named_parameters()),
                  {{"format", "tinygrok-snapshot-1"}, {"config", to_json(config).dump()}});
    last_snapshot = state.step;
  };

  // At every eval: a metrics.csv row, the analyses and snapshot due, T_m and T_g, the grok
  // streak, and the progress line with the step rate since the last eval.
  RunEvaluator evaluator(*model, loss_kind, train_tokens, train_labels, test_tokens, test_labels,
                         record_step);
  int64_t steps_at_last_eval = state.step;
  double train_seconds_at_last_eval = state.train_seconds;
  int64_t step_of_last_eval = -1;  // in this session
  double train_loss_at_last_eval = 0;
  auto eval = [&] {
    const AddWallTime timed(state.eval_seconds);
    const auto [train_m, test_m, weight_norm] = evaluator.measure();
    step_of_last_eval = state.step;
    train_loss_at_last_eval = train_m.loss;
    MetricsRow row{state.step, train_m.loss, train_m.accuracy, test_m.loss, test_m.accuracy,
                   weight_norm, schedule.at(std::max<int64_t>(state.step - 1, 0)),
                   elapsed()};
    metrics.write(row);
    if (tracker) tracker->record(state.step, *model, train_tokens, train_labels);
    if (config.snapshot_every > 0 && state.step % config.snapshot_every == 0) snapshot();
    if (state.t_m < 0 && train_m.accuracy >= kGrokAccuracy) state.t_m = state.step;
    if (state.t_g < 0 && test_m.accuracy >= kGrokAccuracy) state.t_g = state.step;
    state.grok_streak = test_m.accuracy >= kGrokAccuracy ? state.grok_streak + 1 : 0;
    const double dt = state.train_seconds - train_seconds_at_last_eval;
    const double rate = dt > 0 ? (state.step - steps_at_last_eval) / dt : 0;
    steps_at_last_eval = state.step;
    train_seconds_at_last_eval = state.train_seconds;
    progress.update(row, rate);
  };

  stop_requested = false;
  // SIGTERM (a batch scheduler's or `docker stop`'s way of asking) stops a run as Ctrl-C does.
  const auto previous_handler = std::signal(SIGINT, on_interrupt);
  const auto previous_term_handler = std::signal(SIGTERM, on_interrupt);
  RunStatus status = RunStatus::Completed;
  std::string nan_message;
  auto stop_for_nan = [&](double loss, const std::string& when) {
    status = RunStatus::NanLoss;
    nan_message = cat("train: the training loss is ", loss, " ", when, "; stopped. ");
    nan_message += last_checkpoint >= 0
                       ? cat("The last good checkpoint (step ", last_checkpoint, ") is in ",
                             checkpoint_dir(options.out))
                       : std::string("No checkpoint had been written yet.");
  };
  // A step's loss is measured before its update, so weights that an update has just blown up
  // look fine until the next step: check the weights themselves before they replace the last
  // good checkpoint (the eval at this step, if there was one, has already measured them).
  auto save_if_finite = [&] {
    const AddWallTime timed(state.checkpoint_seconds);
    const double loss =
        step_of_last_eval == state.step ? train_loss_at_last_eval : evaluator.train_loss();
    if (!std::isfinite(loss)) {
      stop_for_nan(loss, cat("after step ", state.step));
      return false;
    }
    save();
    return true;
  };
  if (!options.resume) eval();

  // The step on the device sums its losses there, and the host reads the sum only when it waits
  // anyway (an eval, a checkpoint, the end): a non-finite loss is found there, and the time of
  // the steps since the last wait is counted then.
  std::optional<DeviceStep> device_step;
  if (step_on_device)
    device_step.emplace(*model, *optimizer, loss_kind, sampler, data, format, train_tokens,
                        train_labels, record_step, !options.quiet);
  // False (and the run stops) when a queued step's loss was not finite.
  auto settle_device_steps = [&] {
    if (!device_step) return true;
    const DeviceStep::Settled settled = device_step->settle();
    state.train_seconds += settled.seconds;
    state.timed_steps += settled.steps;
    if (std::isfinite(settled.loss_sum)) return true;
    stop_for_nan(settled.loss_sum,
                 cat("at a step in (", state.step - settled.steps, ", ", state.step, "]"));
    return false;
  };
  // Every other run, and the CPU: a non-finite loss stops the run before its update (false).
  auto step_on_host = [&] {
    const auto step_start = std::chrono::steady_clock::now();
    optimizer->set_lr(schedule.at(state.step));
    const std::vector<int64_t> batch = sampler.next();
    const Tensor tokens =
        full_batch ? train_tokens : make_tokens(data, batch, format).to(device);
    const Tensor labels = full_batch ? train_labels : make_labels(data, batch).to(device);
    const double loss =
        host_step(*model, *optimizer, variants, loss_kind, tokens, labels, params, config.clip);
    if (!std::isfinite(loss)) {
      stop_for_nan(loss, cat("at step ", state.step + 1));
      return false;
    }
    state.train_seconds += seconds_since(step_start);
    ++state.timed_steps;
    return true;
  };

  // --- the loop -----------------------------------------------------------------------------
  while (state.step < config.steps) {
    if (stop_requested) {
      status = RunStatus::Interrupted;
      break;
    }
    const bool in_profile = state.step + 1 == profiled;
    if (in_profile) backend_for(device).profiler_range(true);
    const bool stepped = device_step ? (device_step->step(), true) : step_on_host();
    if (in_profile) backend_for(device).profiler_range(false);
    if (!stepped) break;
    ++state.step;
    const bool last = state.step == config.steps;
    const bool eval_due = state.step % config.eval_every == 0 || last;
    const bool checkpoint_due = state.step % config.checkpoint_every == 0;
    // Steps queued on the device are waited for only where the host waits anyway.
    if ((eval_due || checkpoint_due || stop_requested) && !settle_device_steps()) break;
    if (eval_due) {
      eval();
      if (config.stop_at_grok && state.grok_streak >= config.grok_patience) {
        status = RunStatus::Grokked;
        break;
      }
    }
    if (checkpoint_due && !save_if_finite()) break;
  }
  if (status != RunStatus::NanLoss) settle_device_steps();  // a stop between evals
  std::signal(SIGINT, previous_handler);
  std::signal(SIGTERM, previous_term_handler);
  progress.finish();
  if (status != RunStatus::NanLoss && last_checkpoint != state.step) save_if_finite();
  // The run's last weights too, so that an analysis over snapshots sees where it ended.
  if (status != RunStatus::NanLoss && config.snapshot_every > 0 && last_snapshot != state.step)
    snapshot();

  // --- summary and plot ----------------------------------------------------------------------
  const std::vector<MetricsRow> rows = MetricsLog::read((dir / "metrics.csv").string());
  write_file_atomically((dir / "summary.json").string(),
                        run_summary(status, state, batch_size, rows, elapsed()).dump(2) + "\n",
                        "train");
  plot_curves(options.out, options.quiet);

  if (status == RunStatus::NanLoss) std::fprintf(stderr, "%s\n", nan_message.c_str());
  if (status == RunStatus::Interrupted)
    std::fprintf(stderr, "interrupted at step %lld; checkpoint written. Continue with: "
                 "tinygrok train --resume %s\n", static_cast<long long>(state.step),
                 options.out.c_str());
  return status;
}

}  // namespace tg::grok
