// TrainConfig: presets, validation and JSON.
#include "grok/config.h"
#include "grok/step_capture.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "core/error.h"
#include "grok/analysis/eval_tracker.h"
#include "grok/dataset.h"

namespace tg::grok {

void check_threads_flag(int64_t threads) {
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  check(threads >= 0 && threads <= 4 * cores, "--threads: must be between 0 (every core) and ",
        4 * cores, " (4 per core of the ", cores, " here), got ", threads);
}

TrainConfig preset(const std::string& name) {
  TrainConfig c;
  c.preset = name;
  if (name == "nanda") {
    // Nanda et al. 2023: a+b mod 113, one layer, no LayerNorm, full batch, AdamW wd 1.
    return c;  // the struct's defaults are this preset
  }
  if (name == "power") {
    // Power et al. 2022: x/y mod 97 on half the table, two pre-LN layers, minibatches of 512.
    c.op = "div";
    c.p = 97;
    c.frac = 0.5;
    c.layers = 2;
    c.ln = "pre";
    c.tokens = "aopbeq";
    c.batch = -1;  // min(512, ceil(N/2)), N the training set's size
    c.steps = 100000;
    c.eval_every = 250;
    return c;
  }
  if (name == "mlp") {
    // Gromov 2023: one-hot (a, b) -> 500 hidden units with x^2 -> p logits, full batch, lr 1e-2.
    c.model = "mlp";
    c.p = 97;
    c.frac = 0.5;
    c.d_mlp = 500;
    c.act = "x2";
    c.tokens = "ab";
    c.lr = 1e-2;
    c.steps = 10000;
    c.eval_every = 20;
    return c;
  }
  if (name == "default") {
    // The mlp model with less data and a gentler lr: it memorises by step ~200 while test accuracy
    // is at chance, and generalises near step ~2500, in well under a minute on two cores.
    // README, "Which preset runs by default", says why.
    c = preset("mlp");
    c.preset = "default";
    c.frac = 0.3;
    c.lr = 1e-3;
    c.steps = 5000;
    c.eval_every = 25;
    return c;
  }
  std::string names;
  for (const std::string& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error(cat("--preset: unknown preset '", name, "' (expected one of: ", names, ")"));
}

std::vector<std::string> preset_names() { return {"default", "nanda", "power", "mlp"}; }

namespace {
void one_of(const std::string& flag, const std::string& value,
            const std::vector<std::string>& allowed) {
  std::string list;
  for (const std::string& a : allowed) {
    if (a == value) return;
    list += (list.empty() ? "" : ", ") + a;
  }
  throw Error(cat(flag, ": unknown value '", value, "' (expected one of: ", list, ")"));
}

// The training variants' flags (REFERENCE §2: Grokfast, StableMax, ⊥Grad, Omnigrok, decay
// toward the initial weights).
void validate_variants(const TrainConfig& c) {
  one_of("--grokfast", c.grokfast, {"none", "ema", "ma"});
  check(c.grokfast_alpha >= 0 && c.grokfast_alpha < 1, "--grokfast-alpha: must be in [0, 1), got ",
        c.grokfast_alpha);
  check(std::isfinite(c.grokfast_lamb) && c.grokfast_lamb >= 0,
        "--grokfast-lamb: must be >= 0 (0 = the method's default), got ", c.grokfast_lamb);
  check(c.grokfast_window >= 1, "--grokfast-window: must be at least 1, got ", c.grokfast_window);
  // The filter acts once the window is full, and holds the window's gradients in memory.
  check(c.grokfast != "ma" || c.grokfast_window <= c.steps, "--grokfast-window: ",
        c.grokfast_window, " is more than --steps (", c.steps,
        "): the window would never fill, and the filter never act");
  check(std::isfinite(c.init_scale) && c.init_scale > 0, "--init-scale: must be positive, got ",
        c.init_scale);
  // --init-scale scales freshly drawn weights; weights loaded by --init are used as they are.
  check(c.init_scale == 1 || c.init.empty(), "--init-scale: scales fresh initial weights, so it "
        "cannot be combined with --init (which loads its own)");
  one_of("--wd-target", c.wd_target, {"zero", "init"});
}
}  // namespace

void validate_data_and_model(const TrainConfig& c) {
  Operation op;
  try {
    op = parse_operation(c.op);
  } catch (const Error& e) {
    throw Error(cat("--op: ", e.what()));
  }
  if (op != Operation::S5) {
    check(c.p >= 2, "--p: must be at least 2, got ", c.p);
    // The data is the full table of p^2 pairs, held in memory with its tokens.
    check(c.p <= 2048, "--p: must be at most 2048 (the table has p^2 pairs), got ", c.p);
    check(op != Operation::Div || is_prime(c.p), "--p: div needs a prime p, got ", c.p);
  }
  check(c.frac > 0 && c.frac < 1, "--frac: must be in (0, 1), got ", c.frac);
  one_of("--model", c.model, {"transformer", "mlp"});
  one_of("--act", c.act, {"relu", "gelu", "x2"});
  one_of("--ln", c.ln, {"none", "pre", "post"});
  one_of("--tokens", c.tokens, {"ab", "abeq", "aopbeq"});
  check(c.model != "mlp" || c.tokens == "ab", "--tokens: the mlp model reads [a, b] tokens "
        "(--tokens ab), got '", c.tokens, "'");
  check(c.layers >= 1, "--layers: must be at least 1, got ", c.layers);
  check(c.d_model >= 1, "--d-model: must be positive, got ", c.d_model);
  check(c.heads >= 1 && c.d_model % c.heads == 0, "--heads: must divide --d-model (", c.d_model,
        "), got ", c.heads);
  check(c.d_mlp >= 1, "--d-mlp: must be positive, got ", c.d_mlp);
  one_of("--loss", c.loss, {"softmax", "stablemax"});
}

void validate(const TrainConfig& c) {
  validate_data_and_model(c);
  one_of("--optimizer", c.optimizer, {"adamw", "adam", "sgd"});
  one_of("--schedule", c.schedule, {"constant", "cosine"});
  check(c.dropout >= 0 && c.dropout < 1, "--dropout: must be in [0, 1), got ", c.dropout);
  check(c.lr > 0 && std::isfinite(c.lr), "--lr: must be positive and finite, got ", c.lr);
  check(c.wd >= 0 && std::isfinite(c.wd), "--wd: must be finite and >= 0, got ", c.wd);
  check(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1,
        "--betas: each must be in [0, 1), got ", c.beta1, " ", c.beta2);
  check(c.warmup >= 0, "--warmup: must be >= 0, got ", c.warmup);
  check(c.clip >= 0 && std::isfinite(c.clip), "--clip: must be finite and >= 0 (0 = off), got ",
        c.clip);
  check(c.batch >= -1, "--batch: must be >= -1 (0 = full batch, -1 = min(512, ceil(N/2))), got ",
        c.batch);
  check(c.steps > 0, "--steps: must be positive, got ", c.steps);
  check(c.eval_every > 0, "--eval-every: must be positive, got ", c.eval_every);
  check(c.checkpoint_every > 0, "--checkpoint-every: must be positive, got ", c.checkpoint_every);
  check(c.grok_patience >= 1, "--grok-patience: must be at least 1, got ", c.grok_patience);
  check(c.snapshot_every >= 0, "--snapshot-every: must be >= 0 (0 = off), got ", c.snapshot_every);
  validate_variants(c);
  analysis::parse_track(c.track, c.op);  // names --track in its errors
  check_threads_flag(c.threads);
  parse_cuda_graph(c.cuda_graph);  // names --cuda-graph in its error
  check(c.cuda_graph != "on" || c.device.starts_with("cuda"),
        "--cuda-graph on: needs --device cuda (got --device ", c.device, ")");
}

std::string why_flag_has_no_effect(const TrainConfig& c, const std::string& flag) {
  // An unknown --model or --grokfast decides nothing here: validate() names it.
  if (c.model == "mlp" &&
      (flag == "--layers" || flag == "--d-model" || flag == "--heads" || flag == "--ln"))
    return "on the mlp model (one hidden layer of --d-mlp units); it sets the transformer";
  const bool ema = c.grokfast == "ema", ma = c.grokfast == "ma", none = c.grokfast == "none";
  if (flag == "--grokfast-alpha" && (ma || none)) return "without --grokfast ema";
  if (flag == "--grokfast-window" && (ema || none)) return "without --grokfast ma";
  if (flag == "--grokfast-lamb" && none) return "without --grokfast ema or ma";
  if (flag == "--grok-patience" && !c.stop_at_grok) return "without --stop-at-grok";
  if (flag == "--frac" && !c.split_file.empty())
    return "with --split (the split file lists the training pairs)";
  if (flag == "--cuda-graph" && !c.device.starts_with("cuda")) return "without --device cuda";
  if (flag == "--p" && c.op == "s5") return "with --op s5 (the group of 120 permutations)";
  if (flag == "--wd-target" && c.wd == 0) return "with --wd 0 (no decay to aim)";
  return "";
}

void check_given_flags_apply(const TrainConfig& c, const std::vector<std::string>& given) {
  for (const std::string& flag : given)
    if (const std::string why = why_flag_has_no_effect(c, flag); !why.empty())
      throw Error(cat(flag, ": has no effect ", why));
}

#define TG_CONFIG_FIELDS(X)                                                                      \
  X(preset) X(op) X(p) X(frac) X(split_file) X(model) X(layers) X(d_model) X(heads) X(d_mlp)      \
  X(act) X(ln) X(tokens) X(dropout) X(optimizer) X(lr) X(wd) X(beta1) X(beta2) X(warmup)         \
  X(schedule) X(clip) X(batch) X(steps) X(eval_every) X(checkpoint_every) X(seed) X(threads)     \
  X(device) X(stop_at_grok) X(grok_patience) X(init)

// Fields added after the first release: a config.json without them (an older run) reads as the
// default value, so old runs still resume and evaluate.
#define TG_CONFIG_LATER_FIELDS(X)                                                                \
  X(snapshot_every) X(grokfast) X(grokfast_alpha) X(grokfast_lamb) X(grokfast_window) X(loss)     \
  X(orthogonal_grad) X(init_scale) X(weight_norm_constraint) X(wd_target) X(track) X(cuda_graph)

double effective_grokfast_lamb(const TrainConfig& c) {
  if (c.grokfast_lamb != 0) return c.grokfast_lamb;
  return c.grokfast == "ma" ? 5.0 : 2.0;  // Lee et al. 2024's defaults (REFERENCE §2)
}

nlohmann::json to_json(const TrainConfig& c) {
  nlohmann::json j;
#define TG_TO_JSON(field) j[#field] = c.field;
  TG_CONFIG_FIELDS(TG_TO_JSON)
  TG_CONFIG_LATER_FIELDS(TG_TO_JSON)
#undef TG_TO_JSON
  return j;
}

TrainConfig config_from_json(const nlohmann::json& j) {
  TrainConfig c;
#define TG_FROM_JSON(field)                                                         \
  check(j.contains(#field), "config.json: missing key '" #field "'");                \
  try {                                                                             \
    j.at(#field).get_to(c.field);                                                   \
  } catch (const nlohmann::json::exception&) {                                      \
    throw Error("config.json: key '" #field "' has the wrong type");                \
  }
  TG_CONFIG_FIELDS(TG_FROM_JSON)
#undef TG_FROM_JSON
#define TG_FROM_JSON_OR_DEFAULT(field)                                              \
  try {                                                                             \
    if (j.contains(#field)) j.at(#field).get_to(c.field);                           \
  } catch (const nlohmann::json::exception&) {                                      \
    throw Error("config.json: key '" #field "' has the wrong type");                \
  }
  TG_CONFIG_LATER_FIELDS(TG_FROM_JSON_OR_DEFAULT)
#undef TG_FROM_JSON_OR_DEFAULT
  return c;
}

}  // namespace tg::grok
