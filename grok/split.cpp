// Train/test splits: seeded shuffle, random split, and the split file.
#include "grok/split.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>

#include "core/error.h"

namespace tg::grok {

uint64_t derive_seed(uint64_t seed, DataStream stream) {
  uint64_t z = seed ^ (static_cast<uint64_t>(stream) * 0x9E3779B97F4A7C15ull);  // splitmix64
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void shuffle(std::vector<int64_t>& values, Generator& gen) {
  const int64_t n = static_cast<int64_t>(values.size());
  if (n < 2) return;
  const uint64_t counter = gen.reserve(2 * (n - 1));
  for (int64_t k = 0; k < n - 1; ++k) {
    const int64_t i = n - 1 - k;
    const uint64_t bits = (static_cast<uint64_t>(random_word(gen.seed(), counter, 2 * k)) << 32) |
                          random_word(gen.seed(), counter, 2 * k + 1);
    const auto j = static_cast<int64_t>(
        (static_cast<unsigned __int128>(bits) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(values[static_cast<size_t>(i)], values[static_cast<size_t>(j)]);
  }
}

Split random_split(const Dataset& data, double train_fraction, uint64_t seed) {
  check(train_fraction > 0 && train_fraction < 1, "--frac must be in (0, 1), got ",
        train_fraction);
  const int64_t n = data.size();
  const auto n_train = static_cast<int64_t>(std::floor(train_fraction * static_cast<double>(n)));
  check(n_train >= 1 && n_train < n, "--frac ", train_fraction, " of ", n, " pairs (",
        task_name(data.op, data.p), ") gives ", n_train, " train and ",
        n - n_train, " test pairs; both must be non-empty");
  std::vector<int64_t> order = data.pairs;
  Generator gen(derive_seed(seed, DataStream::Split));
  shuffle(order, gen);
  Split split;
  split.train.assign(order.begin(), order.begin() + n_train);
  split.test.assign(order.begin() + n_train, order.end());
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.test.begin(), split.test.end());
  return split;
}

void write_split(const std::string& path, const Split& split) {
  std::ofstream out(path);
  check(out.good(), "split file ", path, ": cannot open for writing");
  for (int64_t pair : split.train) out << pair << '\n';
  out.close();
  check(!out.fail(), "split file ", path, ": write failed");
}

Split read_split(const std::string& path, const Dataset& data) {
  std::ifstream in(path);
  check(in.good(), "split file ", path, ": cannot open for reading");
  std::vector<char> seen(static_cast<size_t>(data.p * data.p), 0);
  Split split;
  std::string line;
  for (int64_t line_number = 1; std::getline(in, line); ++line_number) {
    const std::string where = cat("split file ", path, ": line ", line_number, ": ");
    const size_t first = line.find_first_not_of(" \t\r");
    check(first != std::string::npos, where, "empty line");
    const size_t last = line.find_last_not_of(" \t\r");
    const std::string text = line.substr(first, last - first + 1);
    int64_t pair = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pair);
    check(ec == std::errc() && end == text.data() + text.size(), where, "'", text,
          "' is not an integer");
    check(data.contains(pair), where, "pair ", pair, " is not in the dataset (",
          task_name(data.op, data.p), ": ", data.size(), " pairs a*p+b",
          data.op == Operation::Div ? " with b != 0" : "", ")");
    check(!seen[static_cast<size_t>(pair)], where, "pair ", pair, " appears twice");
    seen[static_cast<size_t>(pair)] = 1;
    split.train.push_back(pair);
  }
  check(!in.bad(), "split file ", path, ": read failed");
  check(!split.train.empty(), "split file ", path, ": no train pairs");
  check(static_cast<int64_t>(split.train.size()) < data.size(), "split file ", path, ": all ",
        data.size(), " pairs are in the train set, leaving no test set");
  std::sort(split.train.begin(), split.train.end());
  for (int64_t pair : data.pairs)
    if (!seen[static_cast<size_t>(pair)]) split.test.push_back(pair);
  return split;
}

}  // namespace tg::grok
