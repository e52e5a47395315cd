// nn module tests: parameter names, shapes and counts (nanda, 2-layer pre-/post-LN), train/eval,
// dropout, the causal mask, attention against a host reference, OneHotMLP against the explicit
// one-hot product, float64 gradchecks of the modules and of a tiny Transformer, state_dict
// save/load and its errors, seeding, token checks and the config names.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/mlp_block.h"
#include "nn/one_hot_mlp.h"
#include "nn/transformer.h"
#include "op_test_util.h"
#include "tinygrok.h"

using namespace tg;
using namespace tg::nn;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;
using tg::testing::relative_error;

namespace {

TransformerConfig nanda_config() {
  TransformerConfig c{};
  c.d_vocab = 114;
  c.d_vocab_out = 113;
  c.n_ctx = 3;
  return c;
}

TransformerConfig tiny_config(LayerNormMode ln = LayerNormMode::None) {
  TransformerConfig c{};
  c.d_vocab = 7;
  c.d_vocab_out = 7;
  c.n_ctx = 3;
  c.d_model = 8;
  c.n_heads = 2;
  c.d_head = 4;
  c.d_mlp = 12;
  c.ln = ln;
  return c;
}

std::vector<std::pair<std::string, Shape>> names_and_shapes(const Module& m) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [name, p] : m.named_parameters()) out.emplace_back(name, p.shape());
  return out;
}

Tensor tokens_of(const std::vector<int64_t>& values, int64_t batch, int64_t len) {
  return from_vector(values, {batch, len});
}

// Makes the module compute with the gradcheck leaves in place of its parameters: each parameter's
// shared TensorImpl temporarily becomes `leaf * 1`, a non-leaf whose graph leads back to the leaf,
// so gradients reach the leaves that gradcheck reads. Restores the parameters when destroyed.
class BindParameters {
 public:
  BindParameters(const Module& m, const std::vector<Tensor>& leaves, size_t first)
      : params_(m.parameters()) {
    for (size_t i = 0; i < params_.size(); ++i) {
      saved_.push_back(*params_[i].impl());
      const Tensor bound = leaves[first + i] * 1.0;
      *params_[i].impl() = *bound.impl();
    }
  }
  ~BindParameters() {
    for (size_t i = 0; i < params_.size(); ++i) *params_[i].impl() = saved_[i];
  }
  BindParameters(const BindParameters&) = delete;
  BindParameters& operator=(const BindParameters&) = delete;

 private:
  std::vector<Tensor> params_;
  std::vector<TensorImpl> saved_;
};

// gradcheck inputs: `extra` (e.g. the module's input) followed by float64 copies of the module's
// parameters; those for which `checked(name)` holds require grad, the others are held constant.
std::vector<Tensor> gradcheck_inputs(
    const Module& m, const std::vector<Tensor>& extra,
    const std::function<bool(const std::string&)>& checked = [](const std::string&) { return true; }) {
  std::vector<Tensor> inputs = extra;
  for (const auto& [name, p] : m.named_parameters())
    inputs.push_back(p.detach().clone().requires_grad_(checked(name)));
  return inputs;
}

// Gradchecks f over inputs, after guarding the harness itself: with the parameters bound to the
// leaves, a random projection of f's output must have a nonzero gradient at every checked input
// (were the binding broken, analytic and numeric derivatives would both be 0 and agree).
void check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                     const std::vector<Tensor>& inputs) {
  std::vector<Tensor> leaves;
  for (const Tensor& x : inputs)
    leaves.push_back(x.requires_grad() ? x.detach().clone().requires_grad_() : x);
  const Tensor out = f(leaves);
  Generator gen(99);
  (out * randn(out.shape(), gen, DType::Float64)).sum().backward();
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!leaves[i].requires_grad()) continue;
    INFO("input " << i);
    REQUIRE(leaves[i].grad().defined());
    CHECK(leaves[i].grad().pow(2).sum().item() > 0);
  }
  CHECK_GRADCHECK(f, inputs);
}

// Randomises the parameters (biases and LayerNorm weights start at constants, which would leave
// their gradients untested for symmetry-dependent bugs).
void randomise(Module& m, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard no_grad;
  for (Tensor& p : m.parameters()) p.copy_(normal(p.shape(), 0, 0.5, gen, p.dtype()));
}

}  // namespace

// --- names, shapes and counts ------------------------------------------------------------------

TEST_CASE("nn: nanda transformer has the TransformerLens names, shapes and 226,688 parameters",
          "[nn]") {
  Generator gen(0);
  Transformer model(nanda_config(), gen);
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"embed.W_E", {114, 128}},
      {"pos_embed.W_pos", {3, 128}},
      {"blocks.0.attn.W_Q", {4, 128, 32}},
      {"blocks.0.attn.W_K", {4, 128, 32}},
      {"blocks.0.attn.W_V", {4, 128, 32}},
      {"blocks.0.attn.W_O", {4, 32, 128}},
      {"blocks.0.mlp.W_in", {128, 512}},
      {"blocks.0.mlp.b_in", {512}},
      {"blocks.0.mlp.W_out", {512, 128}},
      {"blocks.0.mlp.b_out", {128}},
      {"unembed.W_U", {128, 113}},
  };
  CHECK(names_and_shapes(model) == expected);
  CHECK(model.num_parameters() == 226688);
  CHECK(model.parameters().size() == expected.size());
  for (const Tensor& p : model.parameters()) {
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
    CHECK(p.dtype() == DType::Float32);
  }

  const Tensor logits = model.forward(tokens_of({1, 2, 113, 112, 0, 113}, 2, 3));
  CHECK(logits.shape() == Shape{2, 113});
  CHECK(logits.dtype() == DType::Float32);
  CHECK(model.forward(tokens_of({5, 6}, 2, 1)).shape() == Shape{2, 113});  // T < n_ctx
}

TEST_CASE("nn: 2-layer pre-LN and post-LN transformers list their LayerNorms and biases", "[nn]") {
  for (LayerNormMode mode : {LayerNormMode::Pre, LayerNormMode::Post}) {
    INFO(layer_norm_mode_name(mode));
    TransformerConfig c{};
    c.d_vocab = 99;
    c.d_vocab_out = 97;
    c.n_ctx = 4;
    c.n_layers = 2;
    c.ln = mode;
    c.attn_bias = true;
    c.unembed_bias = true;
    Generator gen(1);
    Transformer model(c, gen);
    std::vector<std::pair<std::string, Shape>> expected = {{"embed.W_E", {99, 128}},
                                                           {"pos_embed.W_pos", {4, 128}}};
    for (const std::string block : {"blocks.0.", "blocks.1."}) {
      const std::vector<std::pair<std::string, Shape>> more = {
          {block + "ln1.w", {128}},           {block + "ln1.b", {128}},
          {block + "attn.W_Q", {4, 128, 32}}, {block + "attn.W_K", {4, 128, 32}},
          {block + "attn.W_V", {4, 128, 32}}, {block + "attn.W_O", {4, 32, 128}},
          {block + "attn.b_Q", {4, 32}},      {block + "attn.b_K", {4, 32}},
          {block + "attn.b_V", {4, 32}},      {block + "attn.b_O", {128}},
          {block + "ln2.w", {128}},           {block + "ln2.b", {128}},
          {block + "mlp.W_in", {128, 512}},   {block + "mlp.b_in", {512}},
          {block + "mlp.W_out", {512, 128}},  {block + "mlp.b_out", {128}}};
      expected.insert(expected.end(), more.begin(), more.end());
    }
    expected.insert(expected.end(), {{"ln_final.w", {128}},
                                     {"ln_final.b", {128}},
                                     {"unembed.W_U", {128, 97}},
                                     {"unembed.b_U", {97}}});
    CHECK(names_and_shapes(model) == expected);

    const auto state = model.state_dict();
    CHECK(state.at("blocks.1.ln2.w").to_vector<double>() == std::vector<double>(128, 1.0));
    CHECK(state.at("blocks.1.ln2.b").to_vector<double>() == std::vector<double>(128, 0.0));
    CHECK(state.at("blocks.0.attn.b_Q").to_vector<double>() == std::vector<double>(128, 0.0));
    CHECK(model.forward(tokens_of({1, 2, 3, 4, 5, 6, 7, 8}, 2, 4)).shape() == Shape{2, 97});
  }
}

TEST_CASE("nn: initialisation follows Nanda's scales and the seed reproduces the model", "[nn]") {
  const TransformerConfig c = nanda_config();
  Generator gen_a(7), gen_b(7), gen_c(8);
  Transformer a(c, gen_a), b(c, gen_b), other(c, gen_c);
  const auto pa = a.named_parameters(), pb = b.named_parameters(), po = other.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    CHECK(pa[i].second.to_vector<float>() == pb[i].second.to_vector<float>());
    if (pa[i].first.find(".b_") == std::string::npos)
      CHECK(pa[i].second.to_vector<float>() != po[i].second.to_vector<float>());
  }

  // The draws happen in named_parameters() order: redraw them in that order from the same seed.
  Generator redraw(7);
  for (const auto& [name, p] : a.named_parameters()) {
    INFO(name);
    if (name.find(".b_") != std::string::npos) {
      CHECK(p.to_vector<double>() == std::vector<double>(p.numel(), 0.0));
      continue;
    }
    const double std = name == "unembed.W_U" ? 1 / std::sqrt(114.0) : 1 / std::sqrt(128.0);
    CHECK(p.to_vector<float>() == normal(p.shape(), 0, std, redraw).to_vector<float>());
  }
}

// --- modes and dropout ---------------------------------------------------------------------------

TEST_CASE("nn: train() and eval() reach every submodule", "[nn]") {
  Generator gen(0);
  TransformerConfig c = tiny_config(LayerNormMode::Pre);
  c.n_layers = 2;
  c.dropout = 0.5;
  Transformer model(c, gen);
  CHECK(model.is_training());
  model.eval();
  CHECK(!model.is_training());
  CHECK(!model.block(1).is_training());
  CHECK(!model.block(1).attn().is_training());
  CHECK(!model.block(0).mlp().is_training());
  const Tensor tokens = tokens_of({1, 2, 3, 4, 5, 6}, 2, 3);
  // In eval mode dropout is off: the forward is deterministic.
  CHECK(model.forward(tokens).to_vector<float>() == model.forward(tokens).to_vector<float>());
  model.train();
  CHECK(model.block(1).attn().is_training());
  CHECK(model.forward(tokens).to_vector<float>() != model.forward(tokens).to_vector<float>());
  model.train(false);
  CHECK(!model.embed().is_training());
}

TEST_CASE("nn: a block's fast paths, called in training, drop what its reference drops", "[nn]") {
  // Transformer::forward takes the reference path while dropout is on, so only a direct call
  // reaches the fast paths' dropout branches; they must draw the same masks, in the same order.
  for (LayerNormMode mode : {LayerNormMode::None, LayerNormMode::Pre, LayerNormMode::Post}) {
    INFO(layer_norm_mode_name(mode));
    TransformerConfig c = tiny_config(mode);
    c.dropout = 0.4;
    Generator gen(5);
    TransformerBlock block(c, gen);
    REQUIRE(block.is_training());
    Generator data(9);
    const Tensor table = randn({5, c.d_model}, data);
    const Tensor rows = from_vector<int64_t>({4, 0, 2, 1, 1, 3, 2, 0, 4}, {3, 3});
    const Tensor x = embedding(table, rows);  // [3, 3, d_model]
    const uint64_t start = gen.offset();
    const std::vector<double> reference = block.forward_reference(x).to_vector<double>();
    CHECK(gen.offset() > start);  // it drew masks
    gen.set_state(gen.seed(), start);
    CHECK(relative_error(block.forward(x).to_vector<double>(), reference) < 1e-5);
    gen.set_state(gen.seed(), start);
    CHECK(relative_error(block.forward_table(table, rows, rows).to_vector<double>(), reference) <
          1e-5);
    block.eval();
    CHECK(relative_error(block.forward(x).to_vector<double>(), reference) > 1e-3);
  }
}

TEST_CASE("nn: Dropout is the identity in eval mode and drops with scaling in training", "[nn]") {
  Generator gen(3);
  Dropout drop(0.25, gen);
  const Tensor x = ones({1000});
  drop.eval();
  CHECK(drop.forward(x).same(x));
  drop.train();
  const std::vector<float> y = drop.forward(x).to_vector<float>();
  int64_t zeros_seen = 0;
  for (float v : y) {
    if (v == 0) ++zeros_seen;
    else CHECK(v == Approx(1 / 0.75));
  }
  CHECK(zeros_seen > 150);
  CHECK(zeros_seen < 350);
  CHECK_THROWS_WITH(Dropout(1.0, gen), StartsWith("Dropout: p must be in [0, 1)"));
}

// --- attention -------------------------------------------------------------------------------------

TEST_CASE("nn: Attention is causal: a later token never changes an earlier position", "[nn]") {
  Generator gen(5);
  Attention attn(8, 2, 4, gen, /*bias=*/true);
  randomise(attn, 11);
  const int64_t batch = 2, len = 5;
  const Tensor x = randn({batch, len, 8}, gen);
  const Tensor y = attn.forward(x);
  REQUIRE(y.shape() == Shape{batch, len, 8});
  for (int64_t changed = 1; changed < len; ++changed) {
    INFO("changed position " << changed);
    // Replace position `changed` (in every batch row) with fresh values.
    std::vector<float> values = x.to_vector<float>();
    const std::vector<float> fresh = randn({batch, 8}, gen).to_vector<float>();
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t d = 0; d < 8; ++d) values[(b * len + changed) * 8 + d] = fresh[b * 8 + d];
    const Tensor y2 = attn.forward(from_vector(values, {batch, len, 8}));
    CHECK(y2.slice(1, 0, changed).to_vector<float>() == y.slice(1, 0, changed).to_vector<float>());
    CHECK(y2.select(1, changed).to_vector<float>() != y.select(1, changed).to_vector<float>());
  }
}

TEST_CASE("nn: Attention and its pattern, when asked for, match a per-head host reference",
          "[nn]") {
  Generator gen(9);
  const int64_t batch = 3, len = 4, d_model = 6, heads = 3, d_head = 5;  // awkward sizes
  Attention attn(d_model, heads, d_head, gen, /*bias=*/true);
  randomise(attn, 2);
  const Tensor x = randn({batch, len, d_model}, gen);
  const auto state = attn.state_dict();
  const auto xs = x.to_vector<double>();
  const auto WQ = state.at("W_Q").to_vector<double>(), WK = state.at("W_K").to_vector<double>(),
             WV = state.at("W_V").to_vector<double>(), WO = state.at("W_O").to_vector<double>();
  const auto bQ = state.at("b_Q").to_vector<double>(), bK = state.at("b_K").to_vector<double>(),
             bV = state.at("b_V").to_vector<double>(), bO = state.at("b_O").to_vector<double>();

  std::vector<double> ref(static_cast<size_t>(batch * len * d_model), 0.0);
  std::vector<double> ref_pattern(static_cast<size_t>(batch * heads * len * len), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      // q, k, v [len, d_head] for this head
      std::vector<double> q(len * d_head), k(len * d_head), v(len * d_head);
      for (int64_t t = 0; t < len; ++t)
        for (int64_t e = 0; e < d_head; ++e) {
          double sq = bQ[h * d_head + e], sk = bK[h * d_head + e], sv = bV[h * d_head + e];
          for (int64_t d = 0; d < d_model; ++d) {
            const double xv = xs[(b * len + t) * d_model + d];
            const int64_t w = (h * d_model + d) * d_head + e;
            sq += xv * WQ[w];
            sk += xv * WK[w];
            sv += xv * WV[w];
          }
          q[t * d_head + e] = sq;
          k[t * d_head + e] = sk;
          v[t * d_head + e] = sv;
        }
      for (int64_t t = 0; t < len; ++t) {
        std::vector<double> score(t + 1);
        double peak = -INFINITY, total = 0;
        for (int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (int64_t e = 0; e < d_head; ++e) dot += q[t * d_head + e] * k[s * d_head + e];
          score[s] = dot / std::sqrt(static_cast<double>(d_head));
          peak = std::max(peak, score[s]);
        }
        for (int64_t s = 0; s <= t; ++s) total += std::exp(score[s] - peak);
        for (int64_t s = 0; s <= t; ++s)
          ref_pattern[((b * heads + h) * len + t) * len + s] = std::exp(score[s] - peak) / total;
        for (int64_t e = 0; e < d_head; ++e) {
          double z = 0;
          for (int64_t s = 0; s <= t; ++s) z += std::exp(score[s] - peak) / total * v[s * d_head + e];
          for (int64_t d = 0; d < d_model; ++d)
            ref[(b * len + t) * d_model + d] += z * WO[(h * d_head + e) * d_model + d];
        }
      }
    }
  for (int64_t i = 0; i < batch * len; ++i)
    for (int64_t d = 0; d < d_model; ++d) ref[i * d_model + d] += bO[d];
  CHECK(relative_error(attn.forward(x).to_vector<double>(), ref) < 1e-5);
  // Asked for, the pattern [B, H, T, T] comes out too, and the output is the same to the bit.
  Tensor pattern;
  const Tensor y = attn.forward(x, -1, &pattern);
  CHECK(y.to_vector<float>() == attn.forward(x).to_vector<float>());
  REQUIRE(pattern.shape() == Shape{batch, heads, len, len});
  CHECK(relative_error(pattern.to_vector<double>(), ref_pattern) < 1e-5);
}

// --- OneHotMLP ------------------------------------------------------------------------------------

TEST_CASE("nn: OneHotMLP equals the explicit one-hot matmul composition, values and gradients",
          "[nn]") {
  for (Activation act : {Activation::Square, Activation::Relu}) {
    INFO(activation_name(act));
    const int64_t p = 11, width = 13;
    Generator gen(4);
    OneHotMLP model(p, width, act, gen);
    CHECK(names_and_shapes(model) ==
          std::vector<std::pair<std::string, Shape>>{{"W_in", {2 * p, width}}, {"W_out", {width, p}}});
    const std::vector<int64_t> a = {0, 3, 10, 7, 7, 1}, b = {10, 3, 0, 2, 7, 9};
    std::vector<int64_t> pairs;
    for (size_t i = 0; i < a.size(); ++i) pairs.insert(pairs.end(), {a[i], b[i]});
    const Tensor tokens = from_vector(pairs, {6, 2});

    const Tensor logits = model.forward(tokens);
    REQUIRE(logits.shape() == Shape{6, p});
    logits.sum().backward();
    const auto grad_in = model.W_in().grad().to_vector<double>();
    const auto grad_out = model.W_out().grad().to_vector<double>();
    model.zero_grad();

    const Tensor inputs = cat({one_hot(from_vector(a), p), one_hot(from_vector(b), p)}, 1);  // [6, 2p]
    const Tensor ref = activate(inputs.matmul(model.W_in()), act).matmul(model.W_out());
    ref.sum().backward();
    CHECK(relative_error(logits.to_vector<double>(), ref.to_vector<double>()) < 1e-6);
    CHECK(relative_error(grad_in, model.W_in().grad().to_vector<double>()) < 1e-6);
    CHECK(relative_error(grad_out, model.W_out().grad().to_vector<double>()) < 1e-6);
  }
}

TEST_CASE("nn: OneHotMLP initialises with 1/sqrt(fan_in) in the order W_in, W_out", "[nn]") {
  Generator gen(12), redraw(12);
  OneHotMLP model(97, 50, Activation::Square, gen);
  CHECK(model.W_in().to_vector<float>() ==
        normal({194, 50}, 0, 1 / std::sqrt(194.0), redraw).to_vector<float>());
  CHECK(model.W_out().to_vector<float>() ==
        normal({50, 97}, 0, 1 / std::sqrt(50.0), redraw).to_vector<float>());
}

// --- gradchecks in float64 -----------------------------------------------------------------------

TEST_CASE("nn: Module::to(Float64) converts the parameters in place, keeping the handles", "[nn]") {
  Generator gen(0);
  MLPBlock mlp(4, 6, Activation::Relu, gen);
  const auto before = mlp.named_parameters();
  const auto values = before[0].second.to_vector<double>();
  mlp.to(DType::Float64);
  const auto after = mlp.named_parameters();
  for (size_t i = 0; i < before.size(); ++i) {
    CHECK(after[i].second.same(before[i].second));
    CHECK(after[i].second.dtype() == DType::Float64);
    CHECK(after[i].second.requires_grad());
  }
  CHECK(after[0].second.to_vector<double>() == values);
  CHECK(mlp.forward(randn({2, 4}, gen, DType::Float64)).dtype() == DType::Float64);
  CHECK_THROWS_WITH(mlp.to(DType::Int64), StartsWith("Module::to: parameters must be float"));
}

TEST_CASE("nn: Linear is x @ W + b with W [in, out], bias optional", "[nn]") {
  Generator gen(5);
  Linear with_bias(3, 2, true, gen), without(3, 2, false, gen);
  CHECK(with_bias.named_parameters().size() == 2);
  CHECK(with_bias.named_parameters()[0].first == "W");
  CHECK(with_bias.named_parameters()[1].first == "b");
  CHECK(without.named_parameters().size() == 1);
  CHECK_FALSE(without.b().defined());
  {
    NoGradGuard no_grad;
    Tensor(with_bias.W()).copy_(from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2}));
    Tensor(with_bias.b()).copy_(from_vector<float>({10, 20}));
  }
  // [2, 1, 3] input: the leading axes are kept. Row [1, 0, -1] -> [1 - 5, 2 - 6] + b.
  const Tensor x = from_vector<float>({1, 0, -1, 0, 1, 0}, {2, 1, 3});
  const Tensor y = with_bias.forward(x);
  CHECK(y.shape() == Shape{2, 1, 2});
  CHECK(y.to_vector<float>() == std::vector<float>{6, 16, 13, 24});
  REQUIRE_THROWS_WITH(with_bias.forward(zeros({2, 4})),
                      Catch::Matchers::StartsWith("Linear: x must be [..., 3], got [2, 4]"));
}

TEST_CASE("nn: gradcheck of Attention, MLPBlock, Linear and LayerNorm modules in float64", "[nn]") {
  Generator gen(21);
  const Tensor x = randn({2, 3, 6}, gen, DType::Float64).requires_grad_();

  SECTION("Attention with biases") {
    Attention attn(6, 2, 3, gen, /*bias=*/true);
    attn.to(DType::Float64);
    randomise(attn, 1);
    check_gradients(
        [&](const std::vector<Tensor>& in) {
          BindParameters bind(attn, in, 1);
          return attn.forward(in[0]);
        },
        gradcheck_inputs(attn, {x}));
  }
  SECTION("MLPBlock, ReLU and GELU") {
    for (Activation act : {Activation::Relu, Activation::Gelu}) {
      MLPBlock mlp(6, 5, act, gen);
      mlp.to(DType::Float64);
      randomise(mlp, 2);
      check_gradients(
          [&](const std::vector<Tensor>& in) {
            BindParameters bind(mlp, in, 1);
            return mlp.forward(in[0]);
          },
          gradcheck_inputs(mlp, {x}));
    }
  }
  SECTION("Linear, with and without bias") {
    for (bool bias : {true, false}) {
      Linear layer(6, 4, bias, gen);
      layer.to(DType::Float64);
      randomise(layer, 4);
      check_gradients(
          [&](const std::vector<Tensor>& in) {
            BindParameters bind(layer, in, 1);
            return layer.forward(in[0]);
          },
          gradcheck_inputs(layer, {x}));
    }
  }
  SECTION("LayerNorm") {
    LayerNorm ln(6);
    ln.to(DType::Float64);
    randomise(ln, 3);
    check_gradients(
        [&](const std::vector<Tensor>& in) {
          BindParameters bind(ln, in, 1);
          return ln.forward(in[0]);
        },
        gradcheck_inputs(ln, {x}));
  }
}

TEST_CASE("nn: gradcheck of a tiny Transformer forward in float64 (no LN, pre-LN, post-LN)",
          "[nn]") {
  const Tensor tokens = tokens_of({1, 6, 3, 0, 2, 5}, 2, 3);
  for (LayerNormMode mode : {LayerNormMode::None, LayerNormMode::Pre, LayerNormMode::Post}) {
    INFO(layer_norm_mode_name(mode));
    TransformerConfig c = tiny_config(mode);
    // Without LN every parameter is checked. With LN (and the options on), only the parameters
    // the LN modes add, plus the embeddings, whose gradients pass through every layer: this
    // keeps the test quick under ASan (each checked element costs two forwards).
    std::function<bool(const std::string&)> checked = [](const std::string&) { return true; };
    if (mode != LayerNormMode::None) {
      c.act = Activation::Gelu;
      c.attn_bias = true;
      c.unembed_bias = true;
      checked = [](const std::string& name) {
        return name.find("ln") != std::string::npos || name.find(".b_") != std::string::npos ||
               name.find("embed.") == 0 || name.find("pos_embed.") == 0;
      };
    }
    Generator gen(31);
    Transformer model(c, gen);
    model.to(DType::Float64);
    if (mode != LayerNormMode::None) randomise(model, 4);
    check_gradients(
        [&](const std::vector<Tensor>& in) {
          BindParameters bind(model, in, 0);
          return model.forward(tokens);
        },
        gradcheck_inputs(model, {}, checked));
  }
}

// --- state_dict ------------------------------------------------------------------------------------

TEST_CASE("nn: state_dict aliases the parameters and load_state_dict round-trips in place",
          "[nn]") {
  Generator gen_a(1), gen_b(2);
  const TransformerConfig c = tiny_config(LayerNormMode::Pre);
  Transformer a(c, gen_a), b(c, gen_b);
  randomise(a, 5);
  const auto state = a.state_dict();
  CHECK(state.size() == a.named_parameters().size());
  for (const auto& [name, p] : a.named_parameters()) CHECK(state.at(name).same(p));

  const std::vector<Tensor> handles = b.parameters();  // what an optimiser would hold
  const Tensor tokens = tokens_of({1, 2, 3, 4, 5, 6}, 2, 3);
  CHECK(a.forward(tokens).to_vector<float>() != b.forward(tokens).to_vector<float>());
  b.load_state_dict(state);
  const auto loaded = b.named_parameters();
  for (size_t i = 0; i < loaded.size(); ++i) {
    INFO(loaded[i].first);
    CHECK(loaded[i].second.same(handles[i]));
    CHECK(handles[i].to_vector<float>() == state.at(loaded[i].first).to_vector<float>());
    CHECK(handles[i].storage() != state.at(loaded[i].first).storage());  // a copy, not an alias
  }
  CHECK(a.forward(tokens).to_vector<float>() == b.forward(tokens).to_vector<float>());
  a.load_state_dict(a.state_dict());  // loading a module's own state is a no-op
}

TEST_CASE("nn: load_state_dict errors name the parameter and leave the module unchanged", "[nn]") {
  Generator gen(0);
  Transformer model(nanda_config(), gen);
  const auto original = model.state_dict();
  std::map<std::string, Tensor> state;
  for (const auto& [name, p] : original) state.emplace(name, p.clone().detach());
  const Tensor tokens = tokens_of({1, 2, 113}, 1, 3);
  const std::vector<float> before = model.forward(tokens).to_vector<float>();
  // Make every value differ, so that a partial write would show in the forward.
  for (auto& [name, value] : state) value = value + 1.0;

  SECTION("shape mismatch") {
    state["blocks.0.attn.W_Q"] = zeros({4, 128, 16});
    CHECK_THROWS_WITH(model.load_state_dict(state),
                      Equals("load_state_dict: blocks.0.attn.W_Q: expected [4, 128, 32] float32, "
                             "got [4, 128, 16] float32"));
    CHECK_THROWS_WITH(model.load_state_dict(state, /*strict=*/false),
                      StartsWith("load_state_dict: blocks.0.attn.W_Q: expected"));
    CHECK(model.forward(tokens).to_vector<float>() == before);  // nothing was written
  }
  SECTION("dtype mismatch") {
    state["unembed.W_U"] = zeros({128, 113}, DType::Float64);
    CHECK_THROWS_WITH(model.load_state_dict(state),
                      Equals("load_state_dict: unembed.W_U: expected [128, 113] float32, got "
                             "[128, 113] float64"));
    CHECK(model.forward(tokens).to_vector<float>() == before);
  }
  SECTION("missing key") {
    state.erase("blocks.0.mlp.b_in");
    CHECK_THROWS_WITH(model.load_state_dict(state),
                      StartsWith("load_state_dict: blocks.0.mlp.b_in: missing"));
    CHECK(model.forward(tokens).to_vector<float>() == before);
    model.load_state_dict(state, /*strict=*/false);  // loads the others
    CHECK(model.state_dict().at("blocks.0.mlp.b_in").to_vector<double>() ==
          std::vector<double>(512, 0.0));
    CHECK(model.state_dict().at("embed.W_E").to_vector<float>() ==
          state.at("embed.W_E").to_vector<float>());
  }
  SECTION("unexpected key") {
    state["blocks.1.attn.W_Q"] = zeros({4, 128, 32});
    CHECK_THROWS_WITH(model.load_state_dict(state),
                      StartsWith("load_state_dict: blocks.1.attn.W_Q: unexpected key"));
    CHECK(model.forward(tokens).to_vector<float>() == before);
    model.load_state_dict(state, /*strict=*/false);  // ignores it
    CHECK(model.state_dict().at("embed.W_E").to_vector<float>() ==
          state.at("embed.W_E").to_vector<float>());
  }
}

// --- checks and names ----------------------------------------------------------------------------

TEST_CASE("nn: models check the tokens' dtype, rank, length and range", "[nn]") {
  Generator gen(0);
  Transformer model(tiny_config(), gen);
  CHECK_THROWS_WITH(model.forward(from_vector<float>({1, 2, 3}, {1, 3})),
                    Equals("Transformer: tokens must be int64 [B, T], got float32 [1, 3]"));
  CHECK_THROWS_WITH(model.forward(from_vector<int64_t>({1, 2, 3})),
                    Equals("Transformer: tokens must be int64 [B, T], got int64 [3]"));
  CHECK_THROWS_WITH(model.forward(tokens_of({1, 2, 3, 4}, 1, 4)),
                    Equals("Transformer: tokens [1, 4]: T must be in [1, 3] (n_ctx)"));
  CHECK_THROWS_WITH(model.forward(tokens_of({1, 2, 3, 4, 7, 5}, 2, 3)),
                    Equals("Transformer: token 7 at [1, 1] is outside the vocabulary [0, 7)"));
  CHECK_THROWS_WITH(model.forward(tokens_of({-1, 2, 3}, 1, 3)),
                    Contains("token -1 at [0, 0] is outside the vocabulary"));

  OneHotMLP mlp(5, 8, Activation::Relu, gen);
  CHECK_THROWS_WITH(mlp.forward(tokens_of({1, 2, 3}, 1, 3)),
                    Equals("OneHotMLP: tokens [1, 3]: T must be 2"));
  CHECK_THROWS_WITH(mlp.forward(tokens_of({1, 5}, 1, 2)),
                    Equals("OneHotMLP: token 5 at [0, 1] is outside the vocabulary [0, 5)"));
  CHECK(mlp.forward(tokens_of({4, 0}, 1, 2)).shape() == Shape{1, 5});
}

TEST_CASE("nn: activation and layer norm mode names parse, and unknown names list the valid ones",
          "[nn]") {
  CHECK(parse_activation("relu") == Activation::Relu);
  CHECK(parse_activation("gelu") == Activation::Gelu);
  CHECK(parse_activation("x2") == Activation::Square);
  CHECK(parse_activation("square") == Activation::Square);
  CHECK_THROWS_WITH(parse_activation("tanh"),
                    Equals("activation: unknown name 'tanh' (valid: relu, gelu, x2, square)"));
  CHECK(parse_layer_norm_mode("none") == LayerNormMode::None);
  CHECK(parse_layer_norm_mode("pre") == LayerNormMode::Pre);
  CHECK(parse_layer_norm_mode("post") == LayerNormMode::Post);
  CHECK_THROWS_WITH(parse_layer_norm_mode("PRE"),
                    Equals("layer norm mode: unknown name 'PRE' (valid: none, pre, post)"));
  for (Activation act : {Activation::Relu, Activation::Gelu, Activation::Square})
    CHECK(parse_activation(activation_name(act)) == act);
  for (LayerNormMode mode : {LayerNormMode::None, LayerNormMode::Pre, LayerNormMode::Post})
    CHECK(parse_layer_norm_mode(layer_norm_mode_name(mode)) == mode);
}

TEST_CASE("nn: constructors reject bad sizes", "[nn]") {
  Generator gen(0);
  TransformerConfig c = tiny_config();
  c.n_heads = 0;
  CHECK_THROWS_WITH(Transformer(c, gen), StartsWith("Transformer: d_model, n_heads"));
  c = tiny_config();
  c.dropout = 1.5;
  CHECK_THROWS_WITH(Transformer(c, gen), StartsWith("Transformer: dropout must be in [0, 1)"));
  CHECK_THROWS_WITH(OneHotMLP(0, 4, Activation::Relu, gen), StartsWith("OneHotMLP: p and width"));
  CHECK_THROWS_WITH(Attention(4, 2, 2, gen).forward(zeros({1, 2, 5})),
                    Equals("Attention: x must be [B, T, d_model = 4], got [1, 2, 5]"));
}
