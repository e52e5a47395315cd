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

// Throws naming `file` and the tensor if a floating-point tensor holds a NaN or an infinity:
// weights like that cannot be trained, evaluated or analysed, and a load is where to say so,
// rather than with a null loss later. load_checkpoint checks both of its files.
void check_finite_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                          const std::string& file);

// The number under `key` in a checkpoint's metadata, which must hold exactly one (no "20x",
// no "1e3" for an integer); errors name `file` and the key. int64_t, uint64_t and double.
template <typename T>
T metadata_number(const std::map<std::string, std::string>& metadata, const std::string& key,
                  const std::string& file);

// The checkpoint directory inside a run directory.
std::string checkpoint_dir(const std::string& run_dir);

// Snapshots: the model's weights at chosen steps of a run (train --snapshot-every), kept side by
// side for analysis over time, as run_dir/snapshots/step_00001234.safetensors with the step and
// the configuration in the metadata. Unlike the checkpoint they are never replaced.
void save_snapshot(const std::string& run_dir, int64_t step,
                   const std::vector<std::pair<std::string, Tensor>>& model,
                   const std::map<std::string, std::string>& metadata);
// The snapshot files of a run, sorted by step: (step, path). Empty when there are none.
std::vector<std::pair<int64_t, std::string>> list_snapshots(const std::string& run_dir);

}  // namespace tg::grok
