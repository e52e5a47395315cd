// Whether a run's training step can be recorded once and replayed as a CUDA graph
// (--cuda-graph), and why not when it cannot.
//
// A recorded step replays the same kernels with the same arguments over the same memory, so
// everything that changes from step to step must change on the device: the data (the full
// training set, or a minibatch's rows of its epoch's data, uploaded once per epoch), Adam's step
// count and learning rate (optim::Optimizer::
// keep_step_on_device), the loss (summed on the device and checked when the host next waits).
// What reads the host or changes host values per step cannot be recorded.
#pragma once

#include <string>

#include "grok/config.h"

namespace tg::grok {

enum class CudaGraphMode { Auto, On, Off };

// "auto", "on" or "off"; a tg::Error naming --cuda-graph otherwise.
CudaGraphMode parse_cuda_graph(const std::string& text);

// At most this many batches per epoch are recorded: each batch position in the epoch is a
// graph of its own (it reads its own rows of the epoch's data), with its own memory.
constexpr int64_t kMaxRecordedBatchesPerEpoch = 64;

// "" when the step of a run with this configuration and this many batches per epoch (1: the
// full batch) can be recorded; otherwise the reason, naming the flag ("--clip: clipping reads
// the gradient norm on the host").
std::string why_step_cannot_be_captured(const TrainConfig& config, int64_t batches_per_epoch);

}  // namespace tg::grok
