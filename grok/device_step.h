// DeviceStep: a run's training step kept on the device (grok/step_capture.h), its losses summed
// there and read only when the host waits anyway, each batch position recorded once as a graph.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "grok/batch_sampler.h"
#include "grok/dataset.h"
#include "grok/loss.h"
#include "kernels/backend.h"
#include "nn/model.h"
#include "optim/optimizer.h"

namespace tg::grok {

class DeviceStep {
 public:
  // Steps `model` with `optimizer` (set up with keep_step_on_device) on the batches `sampler`
  // draws: the full training set (`train_tokens`, `train_labels`, on the run's device), or
  // minibatches of `data`'s pairs in `format`. `record`: replay each batch position's step as a
  // recorded graph after its first; `announce`: say so on stderr when the first is recorded.
  DeviceStep(nn::Model& model, optim::Optimizer& optimizer, LossKind loss, BatchSampler& sampler,
             const Dataset& data, TokenFormat format, Tensor train_tokens, Tensor train_labels,
             bool record, bool announce);

  // Queues the next step on the device; waits for nothing.
  void step();

  // The steps queued since the host last waited, once waited for.
  struct Settled {
    int64_t steps = 0;    // how many (0: none were queued, and nothing was waited for)
    double seconds = 0;   // from the first one's queueing to the end of the wait
    double loss_sum = 0;  // their losses summed: not finite when one of them was not
  };
  // Waits for the queued steps and reads their loss sum, then starts the sum anew (unless it is
  // not finite: the run stops there).
  Settled settle();

 private:
  void step_on(const Tensor& tokens, const Tensor& labels);  // forward, backward, update, sum
  std::pair<Tensor, Tensor> batch(int64_t& k);  // the next batch, at position k of its epoch

  nn::Model& model_;
  optim::Optimizer& optimizer_;
  LossKind loss_;
  BatchSampler& sampler_;
  const Dataset& data_;
  TokenFormat format_;
  Tensor train_tokens_, train_labels_;
  bool record_, announce_;

  Tensor loss_sum_;  // float64 []
  int64_t unsettled_steps_ = 0;  // steps queued since the host last waited
  std::chrono::steady_clock::time_point unsettled_since_ = std::chrono::steady_clock::now();
  // Minibatches: the epoch's batches, uploaded at once into buffers that stay put.
  Tensor epoch_tokens_, epoch_labels_;
  uint64_t uploaded_epoch_ = 0;  // the sampler's generator offset of the epoch in the buffers
  // One recording per batch position, made after that position's first (eager) step.
  std::vector<std::unique_ptr<CapturedWork>> graphs_;
  std::vector<char> stepped_eagerly_;
};

}  // namespace tg::grok
