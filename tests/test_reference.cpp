// The `nanda` model against PyTorch: tests/reference/make_nanda_fixture.py (run once with
// Debian's python3-torch; the fixture is committed) computed the logits, the loss, every
// parameter gradient, and the losses of five AdamW steps for fixed weights on a batch of 64.
// tinygrok must match within 1e-5 relative in float32.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "nn/safetensors.h"
#include "nn/transformer.h"
#include "optim/adam.h"
#include "tinygrok.h"

using namespace tg;

namespace {

const std::string kFixture = std::string(TINYGROK_SOURCE_DIR) + "/tests/reference/nanda_fixture.safetensors";

// The fixture's parameter order: j in the weight formula is the position in this list.
const std::vector<std::string> kNames = {
    "embed.W_E",         "pos_embed.W_pos",   "blocks.0.attn.W_Q", "blocks.0.attn.W_K",
    "blocks.0.attn.W_V", "blocks.0.attn.W_O", "blocks.0.mlp.W_in", "blocks.0.mlp.b_in",
    "blocks.0.mlp.W_out", "blocks.0.mlp.b_out", "unembed.W_U"};

// Mirrors deterministic_weights() in make_nanda_fixture.py, operation for operation in float64.
std::vector<float> fixture_weights(int64_t j, const Shape& shape) {
  const double amplitude = std::sqrt(2.0 / 128) * (shape.size() == 1 ? 0.1 : 1.0);
  std::vector<float> w(static_cast<size_t>(numel(shape)));
  for (size_t k = 0; k < w.size(); ++k) {
    const double kd = static_cast<double>(k);
    const double phase = 0.37 * kd + 0.0123 * kd * kd + 1.7 * static_cast<double>(j) + 0.1;
    w[k] = static_cast<float>(amplitude * std::sin(phase));
  }
  return w;
}

double relative_error(const Tensor& out, const Tensor& ref) {
  const std::vector<double> a = out.to_vector<double>(), b = ref.to_vector<double>();
  REQUIRE(a.size() == b.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  return std::sqrt(diff / norm);
}

std::shared_ptr<nn::Transformer> nanda_with_fixture_weights(Generator& gen) {
  nn::TransformerConfig config;
  config.d_vocab = 114;
  config.d_vocab_out = 113;
  config.n_ctx = 3;
  auto model = std::make_shared<nn::Transformer>(config, gen);
  std::map<std::string, Tensor> weights;
  for (size_t j = 0; j < kNames.size(); ++j) {
    const Shape shape = model->state_dict().at(kNames[j]).shape();
    weights[kNames[j]] = from_vector(fixture_weights(static_cast<int64_t>(j), shape), shape);
  }
  model->load_state_dict(weights);  // strict: the names must be exactly the fixture's
  return model;
}

}  // namespace

TEST_CASE("reference: nanda logits, loss and every gradient match PyTorch", "[reference]") {
  const nn::SafetensorsFile fixture = nn::load_safetensors(kFixture);
  Generator gen(0);
  auto model = nanda_with_fixture_weights(gen);
  const Tensor logits = model->forward(fixture.at("tokens"));
  const Tensor loss = cross_entropy(logits, fixture.at("labels"));

  CHECK(relative_error(logits, fixture.at("logits")) < 1e-5);
  CHECK(loss.item() == Approx(fixture.at("loss").item()).epsilon(1e-5));

  loss.backward();
  for (const auto& [name, param] : model->named_parameters()) {
    INFO(name);
    REQUIRE(param.grad().defined());
    CHECK(relative_error(param.grad(), fixture.at("grad." + name)) < 1e-5);
  }
}

TEST_CASE("reference: five AdamW steps give PyTorch's losses", "[reference]") {
  const nn::SafetensorsFile fixture = nn::load_safetensors(kFixture);
  Generator gen(0);
  auto model = nanda_with_fixture_weights(gen);
  optim::AdamW optimizer(model->parameters(), 1e-3, 0.9, 0.98, 1e-8, 1.0);
  const std::vector<double> expected = fixture.at("adamw_losses").to_vector<double>();
  REQUIRE(expected.size() == 5);
  for (size_t step = 0; step < expected.size(); ++step) {
    INFO("step " << step);
    const Tensor loss = cross_entropy(model->forward(fixture.at("tokens")), fixture.at("labels"));
    CHECK(loss.item() == Approx(expected[step]).epsilon(1e-5));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
}
