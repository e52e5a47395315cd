// The training run behind `tinygrok train`: data, model, optimiser, the loop, evals, metrics,
// checkpoints, plots and the summary, all in one run directory.
#pragma once

#include <memory>
#include <string>

#include "core/random.h"
#include "grok/config.h"
#include "grok/dataset.h"
#include "nn/model.h"

namespace tg::grok {

struct RunOptions {
  std::string out;      // the run directory
  bool resume = false;  // continue the run in `out` from its checkpoint
  bool force = false;   // replace an existing `out`
  bool quiet = false;   // no progress output (tests)
};

// How a run ended, and its process exit code.
enum class RunStatus { Completed, Grokked, Interrupted, NanLoss };
int exit_code(RunStatus status);
const char* status_name(RunStatus status);

// Runs (or resumes) a training run and returns how it ended. Bad configuration, a run directory
// in the way, or an unreadable checkpoint throw tg::Error before anything is written.
RunStatus train(const TrainConfig& config, const RunOptions& options);

// The most parameters a model may have: 8 GiB of float32 weights, 32 GiB with their gradients
// and AdamW's moments. Far beyond any grokking setup; a mistyped size is refused, not allocated.
constexpr double kMaxParameters = 2147483648.0;  // 2^31

// The number of parameters build_model makes for this config, counted without building it.
double model_parameter_count(const TrainConfig& config, const Dataset& data);

// The model a config describes, with fresh weights drawn from `gen`; more than kMaxParameters is
// an error naming the size flags.
std::shared_ptr<nn::Model> build_model(const TrainConfig& config, const Dataset& data,
                                       Generator& gen);

TokenFormat token_format(const TrainConfig& config);

// Asks a running train() to stop at the next step boundary, write a checkpoint and return
// Interrupted (what Ctrl-C does).
void request_stop();

}  // namespace tg::grok
