// BatchSampler: the minibatches of train pairs, full batch or shuffled epochs, resumable exactly
// from a checkpoint.
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.h"

namespace tg::grok {

// With batch_size == N (the number of train pairs) every batch is the full train set, always in
// the given order. Otherwise each epoch walks a fresh permutation of the train pairs (shuffle()
// of the given order, drawn from the seed's DataStream::Batches stream) in consecutive batches,
// and drops the last partial batch. The state is two integers, (generator_offset(), position());
// a sampler built with the same pairs, batch size and seed and given them by restore() continues
// identically.
class BatchSampler {
 public:
  // batch_size must be in [1, N] (the error names --batch).
  BatchSampler(std::vector<int64_t> train_pairs, int64_t batch_size, uint64_t seed);

  std::vector<int64_t> next();  // the next batch of pair indices

  int64_t size() const { return static_cast<int64_t>(pairs_.size()); }  // N
  int64_t batch_size() const { return batch_size_; }
  bool full_batch() const { return batch_size_ == size(); }
  int64_t batches_per_epoch() const { return size() / batch_size_; }

  // The generator offset the current epoch's permutation was drawn from (0 for full batch).
  uint64_t generator_offset() const { return epoch_offset_; }
  // Where in that permutation the next batch starts (0 for full batch).
  int64_t position() const { return position_; }
  // The current epoch's permutation of the train pairs (empty for full batch): batch k of the
  // epoch is its entries [k * batch_size, (k + 1) * batch_size).
  const std::vector<int64_t>& epoch_order() const { return permutation_; }
  // Returns to a state read from generator_offset() and position(); checks that it could have
  // come from a sampler of this size and batch size.
  void restore(uint64_t generator_offset, int64_t position);

 private:
  void draw_permutation();  // from the generator's current offset

  std::vector<int64_t> pairs_;
  int64_t batch_size_;
  Generator gen_;
  std::vector<int64_t> permutation_;
  uint64_t epoch_offset_ = 0;
  int64_t position_ = 0;
};

}  // namespace tg::grok
