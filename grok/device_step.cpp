// The training step kept on the device: the loss sum, the epoch uploads of minibatches, one
// recording per batch position, and the wait that settles the queued steps.
#include "grok/device_step.h"

#include <cmath>
#include <cstdio>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/factories.h"

namespace tg::grok {

DeviceStep::DeviceStep(nn::Model& model, optim::Optimizer& optimizer, LossKind loss,
                       BatchSampler& sampler, const Dataset& data, TokenFormat format,
                       Tensor train_tokens, Tensor train_labels, bool record, bool announce)
    : model_(model),
      optimizer_(optimizer),
      loss_(loss),
      sampler_(sampler),
      data_(data),
      format_(format),
      train_tokens_(std::move(train_tokens)),
      train_labels_(std::move(train_labels)),
      record_(record),
      announce_(announce),
      loss_sum_(zeros({}, DType::Float64, train_tokens_.device())),
      graphs_(sampler.full_batch() ? 1 : sampler.batches_per_epoch()),
      stepped_eagerly_(graphs_.size(), 0) {}

void DeviceStep::step_on(const Tensor& tokens, const Tensor& labels) {
  const Tensor loss = loss_of(loss_, model_.forward(tokens), labels);
  optimizer_.zero_grad();
  loss.backward();
  optimizer_.step();
  NoGradGuard no_grad;
  loss_sum_.add_(loss.detach());  // one kernel: converts to float64 as it adds
}

// Batch k of the epoch is rows [k B, (k + 1) B) of the epoch's buffers, uploaded in the epoch's
// order: so a step reads the same addresses at every batch position k.
std::pair<Tensor, Tensor> DeviceStep::batch(int64_t& k) {
  if (sampler_.full_batch()) {
    k = 0;
    return {train_tokens_, train_labels_};
  }
  const int64_t batch_size = sampler_.batch_size();
  sampler_.next();
  k = sampler_.position() / batch_size - 1;
  if (!epoch_tokens_.defined() || sampler_.generator_offset() != uploaded_epoch_) {
    const std::vector<int64_t>& order = sampler_.epoch_order();
    const std::vector<int64_t> used(
        order.begin(), order.begin() + sampler_.batches_per_epoch() * batch_size);
    const Device device = train_tokens_.device();
    const Tensor tokens = make_tokens(data_, used, format_).to(device);
    const Tensor labels = make_labels(data_, used).to(device);
    if (!epoch_tokens_.defined()) {
      epoch_tokens_ = tokens;
      epoch_labels_ = labels;
    } else {  // into the same memory: the recordings read it
      epoch_tokens_.copy_(tokens);
      epoch_labels_.copy_(labels);
    }
    uploaded_epoch_ = sampler_.generator_offset();
  }
  return {epoch_tokens_.slice(0, k * batch_size, (k + 1) * batch_size),
          epoch_labels_.slice(0, k * batch_size, (k + 1) * batch_size)};
}

// The first step at each batch position runs eagerly: its index checks read flags back to the
// host, which a recording cannot, and they cover the replays, which read the same index tensors
// (for minibatches, rows of the same validated training set). Recording runs nothing: the step
// is done by the replay that follows.
void DeviceStep::step() {
  if (unsettled_steps_ == 0) unsettled_since_ = std::chrono::steady_clock::now();
  int64_t k = 0;
  const auto [tokens, labels] = batch(k);
  std::unique_ptr<CapturedWork>& graph = graphs_[k];
  if (record_ && !graph && stepped_eagerly_[k]) {
    graph = backend_for(train_tokens_.device()).capture([&] { step_on(tokens, labels); });
    if (announce_ && k == 0)
      std::fprintf(stderr, "tinygrok train: recorded the step: %zu device operations, replayed "
                   "as one CUDA graph launch%s\n", graph->operations(),
                   sampler_.full_batch() ? "" : cat(" (one graph per batch of the epoch: ",
                                                    sampler_.batches_per_epoch(), ")").c_str());
  }
  if (graph) {
    graph->replay();
  } else {
    step_on(tokens, labels);
    stepped_eagerly_[k] = 1;
  }
  ++unsettled_steps_;
}

DeviceStep::Settled DeviceStep::settle() {
  Settled settled;
  if (unsettled_steps_ == 0) return settled;
  settled.loss_sum = loss_sum_.item();  // waits for the device
  settled.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                  unsettled_since_).count();
  settled.steps = unsettled_steps_;
  unsettled_steps_ = 0;
  if (std::isfinite(settled.loss_sum)) loss_sum_.fill_(0);
  return settled;
}

}  // namespace tg::grok
