// BatchSampler: shuffled epochs of fixed-size minibatches, or the full batch.
#include "grok/batch_sampler.h"

#include "core/error.h"
#include "grok/split.h"

namespace tg::grok {

BatchSampler::BatchSampler(std::vector<int64_t> train_pairs, int64_t batch_size, uint64_t seed)
    : pairs_(std::move(train_pairs)),
      batch_size_(batch_size),
      gen_(derive_seed(seed, DataStream::Batches)) {
  check(!pairs_.empty(), "BatchSampler: no train pairs");
  check(batch_size >= 1 && batch_size <= size(), "--batch must be in [1, ", size(),
        "] (the number of train pairs), got ", batch_size);
  if (!full_batch()) draw_permutation();
}

void BatchSampler::draw_permutation() {
  epoch_offset_ = gen_.offset();
  permutation_ = pairs_;
  shuffle(permutation_, gen_);
  position_ = 0;
}

std::vector<int64_t> BatchSampler::next() {
  if (full_batch()) return pairs_;
  if (position_ + batch_size_ > size()) draw_permutation();  // drops the partial batch
  const auto first = permutation_.begin() + position_;
  position_ += batch_size_;
  return std::vector<int64_t>(first, first + batch_size_);
}

void BatchSampler::restore(uint64_t generator_offset, int64_t position) {
  if (full_batch()) {
    check(generator_offset == 0 && position == 0, "BatchSampler::restore: a full-batch sampler "
          "has state (0, 0), got (", generator_offset, ", ", position, ")");
    return;
  }
  // Each epoch reserves the same number of counters, so a real offset is a multiple of it.
  Generator probe(gen_.seed());
  std::vector<int64_t> scratch(pairs_.size());
  shuffle(scratch, probe);
  const uint64_t per_epoch = probe.offset();
  check(generator_offset % per_epoch == 0, "BatchSampler::restore: generator offset ",
        generator_offset, " is not a multiple of ", per_epoch,
        " (the counters one epoch of ", size(), " pairs uses): a different train set?");
  check(position >= 0 && position <= size() && position % batch_size_ == 0,
        "BatchSampler::restore: position ", position, " is not a multiple of the batch size ",
        batch_size_, " in [0, ", size(), "]");
  gen_.set_state(gen_.seed(), generator_offset);
  draw_permutation();
  position_ = position;
}

}  // namespace tg::grok
