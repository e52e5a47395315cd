// Train/test splits of a dataset's pairs: the seeded random split, the split file, and the
// platform-independent Fisher–Yates shuffle both the split and the batch sampler use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/random.h"
#include "grok/dataset.h"

namespace tg::grok {

// The data's random streams, kept apart from the weights' Generator(seed): a run may seed all
// three with one number, and the split, the batches and the initial weights still get independent
// Philox streams (the key is a splitmix64 hash of the seed and the stream).
enum class DataStream : uint64_t { Split = 1, Batches = 2 };
uint64_t derive_seed(uint64_t seed, DataStream stream);

// Shuffles `values` in place (Fisher–Yates, from the back). Step i draws j uniform in [0, i] from
// 64 random bits as (bits · (i+1)) >> 64, so a shuffle of n values always reserves 2(n−1) words
// of `gen`, and the result depends only on (seed, offset), on every platform. (The bias of that
// mapping is below n/2⁶⁴.)
void shuffle(std::vector<int64_t>& values, Generator& gen);

struct Split {
  std::vector<int64_t> train, test;  // pair indices a·p + b, each part ascending
};

// Shuffles all valid pairs with Generator(derive_seed(seed, DataStream::Split)) and takes the
// first floor(train_fraction · N) as the train set (floor, as Python's int(): Nanda's p = 113 at
// 0.3 gives 3830 train, 8939 test), the rest as the test set. train_fraction must be in (0, 1)
// and leave both parts non-empty.
Split random_split(const Dataset& data, double train_fraction, uint64_t seed);

// Writes the train indices, one per line (the test set is the complement).
void write_split(const std::string& path, const Split& split);
// Reads a file written by write_split: every line one integer, a valid pair of `data`, no
// duplicates, at least one, and not all of them. Errors name the file and the line. The test set
// is the complement; both parts come back ascending.
Split read_split(const std::string& path, const Dataset& data);

}  // namespace tg::grok
