// Checkpoints of a run: RUN/checkpoint/model.safetensors (the weights under TransformerLens
// names, with the run state in its metadata) and optimizer.safetensors (the optimiser's state).
//
// A checkpoint is written whole into checkpoint.tmp/ and then swapped in by renames, so a crash
// at any moment leaves either the previous checkpoint or the new one, never a mixture.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg::grok {

struct Checkpoint {
  std::vector<std::pair<std::string, Tensor>> model;      // parameter name -> weights
  std::vector<std::pair<std::string, Tensor>> optimizer;  // state name -> tensor
  std::map<std::string, std::string> run_state;           // step, config, sampler, ...
};

// Writes `checkpoint` as run_dir/checkpoint/, replacing any previous one atomically.
void save_checkpoint(const std::string& run_dir, const Checkpoint& checkpoint);

// Reads a checkpoint from a run directory, a checkpoint directory, or a model.safetensors file
// (its optimizer.safetensors beside it is read when present). Errors name the file and the
// problem; `step` in both files must agree.
Checkpoint load_checkpoint(const std::string& path);

// The checkpoint directory inside a run directory.
std::string checkpoint_dir(const std::string& run_dir);

}  // namespace tg::grok
