// Dataset tests: labels of every operation on hand-computed pairs, S5 group laws, random splits
// (Nanda's sizes, determinism, disjoint and covering), the split file and its errors, token and
// label tensors, and the batch sampler (full batch, epochs, determinism, exact restore).
#include <catch2/catch.hpp>

#include "test_support.h"
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "grok/batch_sampler.h"
#include "grok/dataset.h"
#include "grok/split.h"
#include "tinygrok.h"

using namespace tg;
using namespace tg::grok;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;

using tg::testing::TempDir;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

int64_t label_of(const Dataset& d, int64_t a, int64_t b) { return d.label(a * d.p + b); }

}  // namespace

TEST_CASE("dataset: operation names round trip, unknown names list the choices", "[dataset]") {
  for (const char* name :
       {"add", "sub", "mul", "div", "x2y2", "x2xyy2", "x2xyy2x", "x3xy", "x3xy2y", "s5"})
    CHECK(operation_name(parse_operation(name)) == name);
  REQUIRE_TG_ERROR(parse_operation("foo"),
                   Equals("unknown op 'foo' (expected one of: add, sub, mul, div, x2y2, x2xyy2, "
                          "x2xyy2x, x3xy, x3xy2y, s5)"));
  // Messages name a task by its modulus; s5, a group of permutations, has none.
  CHECK(task_name(Operation::Div, 97) == "div mod 97");
  CHECK(task_name(Operation::S5, 120) == "s5 (120 elements)");
  REQUIRE_TG_ERROR(make_dataset(Operation::S5, 0).index_of(-1),
                   Equals("s5 (120 elements): pair -1 is outside [0, 14400)"));
}

TEST_CASE("dataset: labels of every operation on hand-computed pairs", "[dataset]") {
  // p = 7, (a, b) = (3, 5): a² = 2, ab = 1, b² = 4, a³ = 6 (mod 7).
  CHECK(label_of(make_dataset(Operation::Add, 7), 3, 5) == 1);       // 8
  CHECK(label_of(make_dataset(Operation::Sub, 7), 2, 5) == 4);       // -3
  CHECK(label_of(make_dataset(Operation::Mul, 7), 3, 5) == 1);       // 15
  CHECK(label_of(make_dataset(Operation::Div, 7), 3, 5) == 2);       // 5⁻¹ = 3, 3·3 = 9
  CHECK(label_of(make_dataset(Operation::X2Y2, 7), 3, 5) == 6);      // 34
  CHECK(label_of(make_dataset(Operation::X2XYY2, 7), 3, 5) == 0);    // 49
  CHECK(label_of(make_dataset(Operation::X2XYY2X, 7), 3, 5) == 3);   // 52
  CHECK(label_of(make_dataset(Operation::X3XY, 7), 3, 5) == 0);      // 42
  CHECK(label_of(make_dataset(Operation::X3XY2Y, 7), 3, 5) == 2);    // 107
  // p = 97.
  CHECK(label_of(make_dataset(Operation::Add, 97), 96, 5) == 4);
  CHECK(label_of(make_dataset(Operation::Sub, 97), 0, 1) == 96);
  CHECK(label_of(make_dataset(Operation::Mul, 97), 50, 2) == 3);
  CHECK(label_of(make_dataset(Operation::Div, 97), 1, 2) == 49);     // 2·49 = 98
  CHECK(label_of(make_dataset(Operation::X3XY, 97), 10, 20) == 36);  // 1200 = 12·97 + 36
  CHECK(label_of(make_dataset(Operation::X3XY2Y, 97), 2, 3) == 29);  // 8 + 18 + 3

  const Dataset add = make_dataset(Operation::Add, 7);
  CHECK(add.p == 7);
  CHECK(add.size() == 49);
  CHECK(std::is_sorted(add.pairs.begin(), add.pairs.end()));
  for (size_t i = 0; i < add.pairs.size(); ++i)
    CHECK(add.labels[i] == (add.pairs[i] / 7 + add.pairs[i] % 7) % 7);
}

TEST_CASE("dataset: div excludes b = 0 and inverts mul", "[dataset]") {
  const Dataset div = make_dataset(Operation::Div, 97);
  CHECK(div.size() == 97 * 96);
  for (int64_t pair : div.pairs) CHECK(pair % 97 != 0);
  CHECK_FALSE(div.contains(5 * 97 + 0));
  REQUIRE_TG_ERROR(div.label(5 * 97), Contains("(5, 0) is not in the dataset"));
  for (size_t i = 0; i < div.pairs.size(); ++i) {
    const int64_t a = div.pairs[i] / 97, b = div.pairs[i] % 97;
    REQUIRE(div.labels[i] * b % 97 == a);  // (a·b⁻¹)·b = a
  }
  REQUIRE_TG_ERROR(make_dataset(Operation::Div, 100), Equals("div needs a prime p, got 100"));
  REQUIRE_TG_ERROR(make_dataset(Operation::Add, 1), Contains("p must be at least 2, got 1"));
  REQUIRE_TG_ERROR(make_dataset(Operation::Mul, kMaxModulus + 1), Contains("at most"));
}

TEST_CASE("dataset: s5 composition is the group law of S5", "[dataset]") {
  const Dataset s5 = make_dataset(Operation::S5, 97);  // p is ignored
  REQUIRE(s5.p == 120);
  REQUIRE(s5.size() == 120 * 120);
  auto op = [&](int64_t a, int64_t b) { return s5.label(a * 120 + b); };
  // Element 0 is the identity, on both sides.
  for (int64_t a = 0; a < 120; ++a) {
    CHECK(op(0, a) == a);
    CHECK(op(a, 0) == a);
  }
  // Every element has an inverse on both sides, and each row is a permutation (Latin square).
  for (int64_t a = 0; a < 120; ++a) {
    std::set<int64_t> row;
    int64_t inverse = -1;
    for (int64_t b = 0; b < 120; ++b) {
      row.insert(op(a, b));
      if (op(a, b) == 0) inverse = b;
    }
    CHECK(row.size() == 120);
    REQUIRE(inverse >= 0);
    CHECK(op(inverse, a) == 0);
  }
  // Associativity on a sample of triples.
  for (int64_t a = 0; a < 120; a += 7)
    for (int64_t b = 3; b < 120; b += 11)
      for (int64_t c = 5; c < 120; c += 13) CHECK(op(op(a, b), c) == op(a, op(b, c)));
  // Hand-computed, applying b first: a = [1,0,2,3,4] (index 24), b = [0,2,1,3,4] (index 6);
  // a∘b = [1,2,0,3,4] (index 30) but b∘a = [2,0,1,3,4] (index 48).
  CHECK(op(24, 6) == 30);
  CHECK(op(6, 24) == 48);
}

TEST_CASE("dataset: random split sizes, determinism, disjoint and covering", "[dataset]") {
  const Dataset nanda = make_dataset(Operation::Add, 113);
  const Split split = random_split(nanda, 0.3, 0);
  CHECK(split.train.size() == 3830);  // floor(0.3 · 12769 = 3830.7)
  CHECK(split.test.size() == 8939);
  CHECK(std::is_sorted(split.train.begin(), split.train.end()));
  CHECK(std::is_sorted(split.test.begin(), split.test.end()));

  std::vector<int64_t> all = split.train;
  all.insert(all.end(), split.test.begin(), split.test.end());
  std::sort(all.begin(), all.end());
  CHECK(all == nanda.pairs);  // disjoint and covering

  CHECK(random_split(nanda, 0.3, 0).train == split.train);
  CHECK(random_split(nanda, 0.3, 1).train != split.train);
  // A different fraction of the same shuffle: the smaller train set is a prefix of the shuffle.
  const Split half = random_split(nanda, 0.5, 0);
  CHECK(half.train.size() == 6384);
  CHECK(std::includes(half.train.begin(), half.train.end(), split.train.begin(),
                      split.train.end()));

  // Div: only b ≠ 0.
  const Dataset div = make_dataset(Operation::Div, 97);
  const Split div_split = random_split(div, 0.5, 3);
  CHECK(div_split.train.size() == 4656);
  for (int64_t pair : div_split.train) CHECK(div.contains(pair));

  const Dataset small = make_dataset(Operation::Add, 7);
  REQUIRE_TG_ERROR(random_split(small, 0, 0), Contains("--frac must be in (0, 1), got 0"));
  REQUIRE_TG_ERROR(random_split(small, 1, 0), Contains("--frac"));
  REQUIRE_TG_ERROR(random_split(small, -0.5, 0), Contains("--frac"));
  REQUIRE_TG_ERROR(random_split(small, 0.01, 0),
                   Contains("--frac 0.01") && Contains("0 train") && Contains("non-empty"));
  CHECK(random_split(small, 0.999, 0).test.size() == 1);  // floor(48.95) = 48
}

TEST_CASE("dataset: shuffle is a seeded permutation that advances the generator", "[dataset]") {
  std::vector<int64_t> values(100);
  for (int64_t i = 0; i < 100; ++i) values[i] = i;
  Generator gen(42);
  std::vector<int64_t> first = values, second = values;
  shuffle(first, gen);
  CHECK(gen.offset() == (2 * 99 + 3) / 4);  // 2 words per step, 4 words per counter
  shuffle(second, gen);
  CHECK(first != values);
  CHECK(first != second);
  std::vector<int64_t> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == values);
  Generator again(42);
  std::vector<int64_t> replay = values;
  shuffle(replay, again);
  CHECK(replay == first);

  // Pinned: splits must not change across platforms or versions (saved runs regenerate theirs).
  std::vector<int64_t> ten = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  Generator pinned(42);
  shuffle(ten, pinned);
  CHECK(ten == std::vector<int64_t>{5, 8, 1, 2, 9, 4, 3, 7, 0, 6});
  CHECK(derive_seed(0, DataStream::Split) == 0xe220a8397b1dcdafull);
  CHECK(derive_seed(0, DataStream::Batches) == 0x6e789e6aa1b965f4ull);
  CHECK(random_split(make_dataset(Operation::Add, 7), 0.2, 0).train ==
        std::vector<int64_t>{2, 12, 13, 16, 17, 35, 36, 41, 48});
}

TEST_CASE("dataset: split file round trip and every error", "[dataset]") {
  TempDir dir;
  const Dataset data = make_dataset(Operation::Div, 7);  // pairs a·7 + b with b ≠ 0
  const Split split = random_split(data, 0.4, 5);
  const std::string path = dir.file("split.txt");
  write_split(path, split);
  {
    std::ifstream in(path);
    int64_t lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    CHECK(lines == static_cast<int64_t>(split.train.size()));
  }
  const Split back = read_split(path, data);
  CHECK(back.train == split.train);
  CHECK(back.test == split.test);

  // Order in the file does not matter; whitespace around a number is fine.
  write_text(dir.file("order.txt"), "9\n 1 \r\n8\n");
  CHECK(read_split(dir.file("order.txt"), data).train == std::vector<int64_t>{1, 8, 9});

  auto error_for = [&](const std::string& name, const std::string& text) {
    write_text(dir.file(name), text);
    return dir.file(name);
  };
  const std::string word = error_for("word.txt", "1\nabc\n");
  REQUIRE_TG_ERROR(read_split(word, data),
                   Equals("split file " + word + ": line 2: 'abc' is not an integer"));
  const std::string junk = error_for("junk.txt", "1\n2\n3x\n");
  REQUIRE_TG_ERROR(read_split(junk, data), Contains(junk) && Contains("line 3: '3x'"));
  const std::string blank = error_for("blank.txt", "1\n\n2\n");
  REQUIRE_TG_ERROR(read_split(blank, data), Contains(blank) && Contains("line 2: empty line"));
  const std::string range = error_for("range.txt", "1\n49\n");
  REQUIRE_TG_ERROR(read_split(range, data),
                   Contains(range) && Contains("line 2: pair 49 is not in the dataset"));
  const std::string negative = error_for("negative.txt", "-1\n");
  REQUIRE_TG_ERROR(read_split(negative, data), Contains("line 1: pair -1 is not in the dataset"));
  const std::string zero_b = error_for("zero_b.txt", "1\n14\n");  // (2, 0): b = 0 for div
  REQUIRE_TG_ERROR(read_split(zero_b, data),
                   Contains(zero_b) && Contains("line 2: pair 14") && Contains("b != 0"));
  const std::string twice = error_for("twice.txt", "1\n2\n1\n");
  REQUIRE_TG_ERROR(read_split(twice, data),
                   Contains(twice) && Contains("line 3: pair 1 appears twice"));
  const std::string empty = error_for("empty.txt", "");
  REQUIRE_TG_ERROR(read_split(empty, data), Equals("split file " + empty + ": no train pairs"));
  std::string everything;
  for (int64_t pair : data.pairs) everything += std::to_string(pair) + "\n";
  const std::string all = error_for("all.txt", everything);
  REQUIRE_TG_ERROR(read_split(all, data), Contains(all) && Contains("leaving no test set"));
  const std::string missing = dir.file("missing.txt");
  REQUIRE_TG_ERROR(read_split(missing, data), Contains(missing) && Contains("cannot open"));
}

TEST_CASE("dataset: token and label tensors for each format", "[dataset]") {
  const Dataset data = make_dataset(Operation::Add, 7);
  const std::vector<int64_t> pairs = {3 * 7 + 5, 0 * 7 + 1};

  CHECK(vocab_size(TokenFormat::AB, 7) == 7);
  CHECK(vocab_size(TokenFormat::ABEq, 7) == 8);
  CHECK(vocab_size(TokenFormat::AOpBEq, 7) == 9);
  CHECK(vocab_size(TokenFormat::ABEq, 113) == 114);  // Nanda
  CHECK(context_length(TokenFormat::AB) == 2);
  CHECK(context_length(TokenFormat::ABEq) == 3);
  CHECK(context_length(TokenFormat::AOpBEq) == 4);

  const Tensor ab = make_tokens(data, pairs, TokenFormat::AB);
  CHECK(ab.dtype() == DType::Int64);
  CHECK(ab.shape() == Shape{2, 2});
  CHECK(ab.to_vector<int64_t>() == std::vector<int64_t>{3, 5, 0, 1});
  const Tensor ab_eq = make_tokens(data, pairs, TokenFormat::ABEq);
  CHECK(ab_eq.shape() == Shape{2, 3});
  CHECK(ab_eq.to_vector<int64_t>() == std::vector<int64_t>{3, 5, 7, 0, 1, 7});
  const Tensor a_op_b_eq = make_tokens(data, pairs, TokenFormat::AOpBEq);
  CHECK(a_op_b_eq.shape() == Shape{2, 4});
  CHECK(a_op_b_eq.to_vector<int64_t>() == std::vector<int64_t>{3, 7, 5, 8, 0, 7, 1, 8});

  const Tensor labels = make_labels(data, pairs);
  CHECK(labels.dtype() == DType::Int64);
  CHECK(labels.shape() == Shape{2});
  CHECK(labels.to_vector<int64_t>() == std::vector<int64_t>{1, 1});

  // Every token is below the vocabulary size, every label below p, for a whole dataset.
  const Dataset s5 = make_dataset(Operation::S5, 0);
  const Tensor tokens = make_tokens(s5, s5.pairs, TokenFormat::AOpBEq);
  CHECK(tokens.shape() == Shape{14400, 4});
  const std::vector<int64_t> ids = tokens.to_vector<int64_t>();
  CHECK(*std::max_element(ids.begin(), ids.end()) == vocab_size(TokenFormat::AOpBEq, 120) - 1);
  CHECK(make_labels(s5, s5.pairs).to_vector<int64_t>() == s5.labels);

  CHECK(make_tokens(data, {}, TokenFormat::ABEq).shape() == Shape{0, 3});
  CHECK(make_labels(data, {}).shape() == Shape{0});
  REQUIRE_TG_ERROR(make_tokens(data, {49}, TokenFormat::AB), Contains("pair 49 is outside"));
  REQUIRE_TG_ERROR(make_labels(make_dataset(Operation::Div, 7), {7}),
                   Contains("(1, 0) is not in the dataset"));
}

TEST_CASE("dataset: batch sampler full batch, epochs, determinism", "[dataset]") {
  std::vector<int64_t> pairs(12);
  for (int64_t i = 0; i < 12; ++i) pairs[i] = 100 + 3 * i;

  BatchSampler full(pairs, 12, 7);
  CHECK(full.full_batch());
  for (int step = 0; step < 3; ++step) CHECK(full.next() == pairs);  // same order every time
  CHECK(full.generator_offset() == 0);
  CHECK(full.position() == 0);

  // N = 12, batch 4: each epoch's three batches cover every pair exactly once.
  BatchSampler sampler(pairs, 4, 7);
  CHECK(sampler.batches_per_epoch() == 3);
  std::vector<std::vector<int64_t>> epochs;
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> seen;
    for (int b = 0; b < 3; ++b) {
      const std::vector<int64_t> batch = sampler.next();
      CHECK(batch.size() == 4);
      seen.insert(seen.end(), batch.begin(), batch.end());
    }
    epochs.push_back(seen);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == pairs);
  }
  CHECK(epochs[0] != epochs[1]);  // a fresh permutation each epoch
  CHECK(epochs[1] != epochs[2]);

  // N = 10, batch 3: three batches of distinct pairs, then the leftover pair is dropped.
  std::vector<int64_t> ten(pairs.begin(), pairs.begin() + 10);
  BatchSampler partial(ten, 3, 1);
  std::set<int64_t> epoch_pairs;
  for (int b = 0; b < 3; ++b)
    for (int64_t pair : partial.next()) epoch_pairs.insert(pair);
  CHECK(epoch_pairs.size() == 9);
  const uint64_t first_epoch = partial.generator_offset();
  partial.next();
  CHECK(partial.generator_offset() > first_epoch);  // the fourth batch starts epoch 2
  CHECK(partial.position() == 3);

  // Same seed, same batches; another seed, others.
  BatchSampler a(pairs, 5, 11), b(pairs, 5, 11), c(pairs, 5, 12);
  bool differs = false;
  for (int step = 0; step < 10; ++step) {
    const std::vector<int64_t> batch = a.next();
    CHECK(batch == b.next());
    differs |= batch != c.next();
  }
  CHECK(differs);

  REQUIRE_TG_ERROR(BatchSampler(pairs, 0, 0), Contains("--batch must be in [1, 12]"));
  REQUIRE_TG_ERROR(BatchSampler(pairs, 13, 0), Contains("--batch") && Contains("got 13"));
  REQUIRE_TG_ERROR(BatchSampler({}, 1, 0), Contains("no train pairs"));
}

TEST_CASE("dataset: batch sampler restore continues identically", "[dataset]") {
  const Dataset data = make_dataset(Operation::Add, 31);
  const Split split = random_split(data, 0.5, 2);  // 480 train pairs
  for (int64_t steps_before : {0, 1, 5, 15, 16, 17, 40}) {  // 16 batches of 30 per epoch
    BatchSampler original(split.train, 30, 9);
    for (int64_t s = 0; s < steps_before; ++s) original.next();
    const uint64_t offset = original.generator_offset();
    const int64_t position = original.position();

    BatchSampler resumed(split.train, 30, 9);
    resumed.restore(offset, position);
    for (int s = 0; s < 40; ++s) REQUIRE(resumed.next() == original.next());
  }

  BatchSampler sampler(split.train, 30, 9);
  for (int s = 0; s < 17; ++s) sampler.next();  // into epoch 2
  const uint64_t epoch_offset = sampler.generator_offset();
  CHECK(epoch_offset > 0);
  REQUIRE_TG_ERROR(sampler.restore(epoch_offset + 1, 0), Contains("not a multiple"));
  REQUIRE_TG_ERROR(sampler.restore(epoch_offset, 7), Contains("position 7"));
  REQUIRE_TG_ERROR(sampler.restore(epoch_offset, 510), Contains("position 510"));
  BatchSampler full(split.train, 480, 9);
  full.restore(0, 0);
  REQUIRE_TG_ERROR(full.restore(4, 0), Contains("full-batch"));
}
