// The optimised models against the straightforward composition: for the nanda, power (2 layers,
// pre-LN) and mlp presets, and a few shapes around them, forward() and forward_reference() give
// the same loss and the same gradient for every parameter within float32 rounding (float64's
// for the sweep over depths), on random weights and a random batch of the preset's own data.
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "grok/config.h"
#include "grok/dataset.h"
#include "grok/split.h"
#include "grok/trainer.h"
#include "op_test_util.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::relative_error;

namespace {

struct LossAndGrads {
  double loss = 0;
  std::vector<double> logits;
  std::map<std::string, std::vector<double>> grads;
};

LossAndGrads loss_and_grads(nn::Model& model, bool reference, const Tensor& tokens,
                            const Tensor& labels) {
  model.zero_grad();
  const Tensor logits = reference ? model.forward_reference(tokens) : model.forward(tokens);
  const Tensor loss = cross_entropy(logits, labels);
  loss.backward();
  LossAndGrads out{loss.item(), logits.to_vector<double>(), {}};
  for (const auto& [name, p] : model.named_parameters())
    out.grads[name] = p.grad().defined() ? p.grad().to_vector<double>() : std::vector<double>();
  return out;
}

// Builds the preset's model (weights from `seed`, in `dtype`) and a batch of `batch` training
// pairs, and compares the two paths: within float32 rounding, or float64's.
void check_paths_agree(grok::TrainConfig config, int64_t batch, uint64_t seed,
                       DType dtype = DType::Float32) {
  const grok::Dataset data = grok::make_dataset(grok::parse_operation(config.op), config.p);
  const grok::Split split = grok::random_split(data, config.frac, seed);
  const std::vector<int64_t> pairs(split.train.begin(), split.train.begin() + batch);
  const grok::TokenFormat format = grok::token_format(config);
  const Tensor tokens = grok::make_tokens(data, pairs, format);
  const Tensor labels = grok::make_labels(data, pairs);
  Generator gen(seed);
  auto model = grok::build_model(config, data, gen);
  model->to(dtype);
  const double tol = dtype == DType::Float64 ? 1e-10 : 1e-5;

  const LossAndGrads fast = loss_and_grads(*model, false, tokens, labels);
  const LossAndGrads ref = loss_and_grads(*model, true, tokens, labels);
  CHECK(fast.loss == Approx(ref.loss).epsilon(tol));
  CHECK(relative_error(fast.logits, ref.logits) < tol);
  for (const auto& [name, g] : ref.grads) {
    INFO("parameter " << name);
    REQUIRE(fast.grads.at(name).size() == g.size());
    REQUIRE_FALSE(g.empty());
    CHECK(relative_error(fast.grads.at(name), g) < 20 * tol);
  }
}

}  // namespace

TEST_CASE("fast path: nanda's loss and gradients equal the composition's", "[fast_path]") {
  check_paths_agree(grok::preset("nanda"), 3830, 0);
  check_paths_agree(grok::preset("nanda"), 37, 5);  // an awkward batch
}

TEST_CASE("fast path: a 2-layer pre-LN power model agrees", "[fast_path]") {
  check_paths_agree(grok::preset("power"), 512, 1);
}

TEST_CASE("fast path: the one-hot MLP agrees with its one-hot matmul", "[fast_path]") {
  check_paths_agree(grok::preset("mlp"), 4704, 2);
  grok::TrainConfig relu = grok::preset("mlp");
  relu.act = "relu";
  check_paths_agree(relu, 101, 3);
}

namespace {
// A small transformer of nanda's kind, on a+b mod 31.
grok::TrainConfig small_transformer() {
  grok::TrainConfig c = grok::preset("nanda");
  c.p = 31;
  c.d_model = 48;
  c.heads = 3;
  c.d_mlp = 80;
  return c;
}
}  // namespace

TEST_CASE("fast path: other depths, post-LN, GELU and [a, b] tokens agree", "[fast_path]") {
  grok::TrainConfig c = small_transformer();
  // In float64: a ReLU's gradient jumps at 0, and through three layers float32's rounding, which
  // differs between the two paths, can put a unit's input on either side of it (a unit of the
  // last block did, and moved every earlier gradient by 1e-3).
  for (int64_t layers : {0, 1, 3}) {
    INFO("layers " << layers);
    c.layers = layers;
    check_paths_agree(c, 211, 4, DType::Float64);  // 211 of the 288 training pairs
  }
  c.layers = 2;
  c.ln = "post";
  c.act = "gelu";
  check_paths_agree(c, 97, 6);
  c.ln = "pre";
  c.tokens = "ab";
  check_paths_agree(c, 64, 7);
}

TEST_CASE("fast path: with dropout, eval mode takes the fast path and training the composition",
          "[fast_path]") {
  grok::TrainConfig c = small_transformer();
  c.dropout = 0.3;
  const grok::Dataset data = grok::make_dataset(grok::parse_operation(c.op), c.p);
  const Tensor tokens = grok::make_tokens(data, {0, 5, 77, 300, 960}, grok::token_format(c));
  Generator gen(8);
  auto model = grok::build_model(c, data, gen);
  model->eval();
  CHECK(relative_error(model->forward(tokens).to_vector<double>(),
                       model->forward_reference(tokens).to_vector<double>()) < 1e-5);
  // In training, two calls draw different masks, so the outputs differ from eval's and from
  // each other: the composition with its per-example masks is what ran.
  model->train();
  const std::vector<double> a = model->forward(tokens).to_vector<double>();
  const std::vector<double> b = model->forward(tokens).to_vector<double>();
  CHECK(a != b);
}
