// TrainConfig: every knob of a grokking run, the named presets it starts from, its validation,
// and its JSON form (config.json in the run directory holds all it takes to reproduce a run).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tg::grok {

struct TrainConfig {
  std::string preset = "default";

  // data
  std::string op = "add";
  int64_t p = 113;
  double frac = 0.3;            // training fraction of all valid pairs
  std::string split_file;       // reuse a split.txt instead of drawing one

  // model
  std::string model = "transformer";  // transformer | mlp
  int64_t layers = 1;
  int64_t d_model = 128;
  int64_t heads = 4;
  int64_t d_mlp = 512;          // the MLP block's width (the one-hot MLP's hidden width)
  std::string act = "relu";     // relu | gelu | x2
  std::string ln = "none";      // none | pre | post
  std::string tokens = "abeq";  // ab | abeq ([a, b, =]) | aopbeq ([a, op, b, =])
  double dropout = 0;

  // optimisation
  std::string optimizer = "adamw";  // adamw | adam | sgd
  double lr = 1e-3;
  double wd = 1.0;
  double beta1 = 0.9, beta2 = 0.98;
  int64_t warmup = 10;
  std::string schedule = "constant";  // constant | cosine
  double clip = 0;                    // max gradient norm; 0 = no clipping
  int64_t batch = 0;  // 0 = the full training set every step; -1 = min(512, ceil(N/2)) (Power)
  int64_t steps = 40000;

  // run
  int64_t eval_every = 100;
  int64_t checkpoint_every = 1000;
  uint64_t seed = 0;
  int threads = 0;              // 0 = every core
  std::string device = "cpu";
  std::string cuda_graph = "auto";  // auto | on | off: record the CUDA step once, replay it
  bool stop_at_grok = false;
  int64_t grok_patience = 3;    // evals in a row at test accuracy >= 99% that end a run
  std::string init;             // start from this checkpoint's weights
  int64_t snapshot_every = 0;   // model weights into RUN/snapshots/ at these evals; 0 = off

  // training variants (REFERENCE §2); the defaults leave a run as it was
  std::string grokfast = "none";  // none | ema | ma: Grokfast's gradient filter
  double grokfast_alpha = 0.98;   // EMA decay
  double grokfast_lamb = 0;       // amplification; 0 = the method's default (ema 2, ma 5)
  int64_t grokfast_window = 100;  // MA window, in steps
  std::string loss = "softmax";   // softmax | stablemax (Prieto et al. 2025)
  bool orthogonal_grad = false;   // ⊥Grad: the gradient's part orthogonal to each weight tensor
  double init_scale = 1;          // Omnigrok: fresh initial weights times this
  bool weight_norm_constraint = false;  // Omnigrok: hold ||theta|| at its value at step 0
  std::string wd_target = "zero";       // zero | init: weight decay pulls toward 0 or theta_0

  // per-eval analyses into RUN/analysis_track.csv: "" or a list of sharpness, collapse, fourier
  std::string track;
};

// The presets by name: "default", "nanda", "power", "mlp" (REFERENCE §1 for the last three).
TrainConfig preset(const std::string& name);
std::vector<std::string> preset_names();

// Checks every value, throwing tg::Error naming the flag ("--frac: must be in (0, 1), got 1.5").
void validate(const TrainConfig& config);

// Checks what rebuilding a run's data and model reads (the task, the split's fraction, the
// model's shape, the loss), as validate() does: eval and analyze of a finished run, whose
// training settings a later version may judge differently, need no more.
void validate_data_and_model(const TrainConfig& config);

// --threads (train, analyze, sweep): 0 (every core) up to 4 threads a core. More only slows a
// run down, and OpenMP fails to start tens of thousands (or crashes trying).
void check_threads_flag(int64_t threads);

// Why `flag` (e.g. "--layers") has no effect on a run of this configuration, such as --layers
// with --model mlp; "" when it has one.
std::string why_flag_has_no_effect(const TrainConfig& config, const std::string& flag);

// Refuses a flag the user gave that this configuration would ignore: a run that silently differs
// from its command line is worse than an error. validate() cannot tell a given flag from a
// preset's value, so the CLI calls this with the flags given.
void check_given_flags_apply(const TrainConfig& config, const std::vector<std::string>& given);

// The Grokfast amplification a run uses: grokfast_lamb, or when that is 0 the method's default.
double effective_grokfast_lamb(const TrainConfig& config);

nlohmann::json to_json(const TrainConfig& config);
TrainConfig config_from_json(const nlohmann::json& json);  // errors name the missing key

}  // namespace tg::grok
