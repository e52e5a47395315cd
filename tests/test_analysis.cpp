// The analysis suite (grok/analysis/), each method against the property that defines it: the
// Fourier basis is orthonormal; a pure-frequency embedding has all its energy at that frequency;
// a neuron cos(w_k(a+b)) clusters at k; logits made of key-frequency components are their own
// restriction and leave log p when excluded; the §3.2 fit recovers an exact exponential and its
// T_g; sharpness is 0 at ρ = 0, ≈ ρ‖g‖ for small ρ, larger for larger weights, and leaves the
// weights bit for bit; softmax collapse on hand-made rows; and a tiny run analysed end to end.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/factories.h"
#include "grok/analysis/fourier.h"
#include "grok/analysis/neuron_clusters.h"
#include "grok/analysis/pair_logits.h"
#include "grok/analysis/restricted_loss.h"
#include "grok/analysis/run_analysis.h"
#include "grok/analysis/sharpness.h"
#include "grok/analysis/softmax_collapse.h"
#include "grok/analysis/weight_norm_decay.h"
#include "grok/analysis/weight_norms.h"
#include "grok/config.h"
#include "grok/metrics.h"
#include "grok/trainer.h"
#include "nn/one_hot_mlp.h"
#include "nn/transformer.h"
#include "optim/clip.h"
#include "test_support.h"

using namespace tg;
using namespace tg::grok;
using namespace tg::grok::analysis;
namespace fs = std::filesystem;
using json = nlohmann::json;
using Catch::Matchers::Contains;

namespace {

double angle(int64_t k, int64_t x, int64_t p) {
  return 2 * std::numbers::pi * static_cast<double>(k * x) / static_cast<double>(p);
}

// [p, d] with row a = offset + cos(w_k a)·u + sin(w_k a)·v for fixed random u, v, offset.
Tensor pure_frequency_table(int64_t p, int64_t k, int64_t d, uint64_t seed) {
  Generator gen(seed);
  const std::vector<double> u = randn({d}, gen, DType::Float64).to_vector<double>();
  const std::vector<double> v = randn({d}, gen, DType::Float64).to_vector<double>();
  std::vector<double> values;
  for (int64_t a = 0; a < p; ++a)
    for (int64_t j = 0; j < d; ++j)
      values.push_back(0.7 + std::cos(angle(k, a, p)) * u[j] + std::sin(angle(k, a, p)) * v[j]);
  return from_vector(values, {p, d});
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  for (std::string f; std::getline(in, f, ',');) fields.push_back(f);
  if (!line.empty() && line.back() == ',') fields.push_back("");
  return fields;
}

}  // namespace

TEST_CASE("the Fourier basis over Z_p is orthonormal, odd and even p", "[analysis][fourier]") {
  for (int64_t p : {7, 8}) {
    const FourierBasis basis = fourier_basis(p);
    REQUIRE(basis.rows.shape() == Shape{p, p});
    REQUIRE(basis.max_frequency() == p / 2);
    const std::vector<double> gram = matmul(basis.rows, basis.rows.t()).to_vector<double>();
    for (int64_t i = 0; i < p; ++i)
      for (int64_t j = 0; j < p; ++j)
        REQUIRE(gram[i * p + j] == Approx(i == j ? 1.0 : 0.0).margin(1e-12));
    // Every frequency 1..⌊p/2⌋ appears: twice (cos, sin) except p/2 of an even p (cos only).
    for (int64_t k = 1; k <= p / 2; ++k) {
      const auto count = std::count(basis.frequency.begin(), basis.frequency.end(), k);
      REQUIRE(count == (2 * k == p ? 1 : 2));
    }
    REQUIRE(basis.names.front() == "const");
  }
  REQUIRE(fourier_basis(8).names.back() == "cos 4");
}

TEST_CASE("a pure-frequency embedding has all its non-constant energy at that frequency",
          "[analysis][fourier]") {
  for (auto [p, k] : {std::pair<int64_t, int64_t>{7, 2}, {8, 3}, {8, 4}, {113, 14}}) {
    const Tensor table = pure_frequency_table(p, k, 5, 100 + k);
    const std::vector<double> energy = frequency_energy(fourier_basis(p), table);
    double total = 0, squared_norm = 0;
    for (double e : energy) total += e;
    for (double v : table.to_vector<double>()) squared_norm += v * v;
    REQUIRE(total == Approx(squared_norm).epsilon(1e-12));  // Parseval
    std::vector<double> norm(energy.size());
    for (size_t i = 0; i < energy.size(); ++i) norm[i] = std::sqrt(energy[i]);
    for (size_t j = 1; j < norm.size(); ++j)
      if (static_cast<int64_t>(j) != k) REQUIRE(norm[j] < 1e-9 * norm[k]);
    REQUIRE(norm[0] > 0);  // the offset
    REQUIRE(key_frequencies(norm) == std::vector<int64_t>{k});
    REQUIRE(key_energy_fraction(norm, {k}) == Approx(1.0).epsilon(1e-12));
    REQUIRE(effective_frequency_count(norm) == Approx(1.0).epsilon(1e-9));
  }
}

TEST_CASE("embedding spectra: the transformer's W_E rows 0..p-1, the one-hot MLP's two halves",
          "[analysis][fourier]") {
  const int64_t p = 11;
  // W_E has an extra row (the '=' token) that must not count.
  Tensor W_E =
      cat({pure_frequency_table(p, 3, 6, 1), full({1, 6}, 100.0, DType::Float64)}, int64_t{0});
  const EmbeddingSpectrum t = embedding_spectrum({{"embed.W_E", W_E}}, p);
  REQUIRE(t.norm.size() == 6);
  REQUIRE(t.norm_a.empty());
  REQUIRE(key_frequencies(t.norm) == std::vector<int64_t>{3});

  const Tensor W_in =
      cat({pure_frequency_table(p, 2, 6, 2), pure_frequency_table(p, 5, 6, 3)}, int64_t{0});
  const EmbeddingSpectrum m = embedding_spectrum({{"W_in", W_in}, {"W_out", zeros({6, p})}}, p);
  REQUIRE(key_frequencies(m.norm_a) == std::vector<int64_t>{2});
  REQUIRE(key_frequencies(m.norm_b) == std::vector<int64_t>{5});
  REQUIRE(key_frequencies(m.norm) == std::vector<int64_t>{2, 5});
  for (size_t k = 0; k < m.norm.size(); ++k)
    REQUIRE(m.norm[k] * m.norm[k] ==
            Approx(m.norm_a[k] * m.norm_a[k] + m.norm_b[k] * m.norm_b[k]).margin(1e-12));

  REQUIRE_TG_ERROR(embedding_spectrum({{"W_out", zeros({6, p})}}, p),
                   Contains("neither embed.W_E nor W_in"));
}

TEST_CASE("a random embedding has no key frequencies; a few strong ones are found among noise",
          "[analysis][fourier]") {
  const int64_t p = 113, d = 128;
  Generator gen(7);
  const Tensor noise = randn({p, d}, gen, DType::Float64);
  std::vector<double> energy = frequency_energy(fourier_basis(p), noise);
  std::vector<double> norm(energy.size());
  for (size_t k = 0; k < energy.size(); ++k) norm[k] = std::sqrt(energy[k]);
  REQUIRE(key_frequencies(norm).empty());
  REQUIRE(effective_frequency_count(norm) > 40);  // nearly flat over 56 frequencies

  // Three frequencies of unequal strength on top of the noise: all three, and nothing else.
  const Tensor table = noise * 0.1 + pure_frequency_table(p, 14, d, 8) * 2.0 +
                       pure_frequency_table(p, 35, d, 9) + pure_frequency_table(p, 41, d, 10) * 0.5;
  energy = frequency_energy(fourier_basis(p), table);
  for (size_t k = 0; k < energy.size(); ++k) norm[k] = std::sqrt(energy[k]);
  REQUIRE(key_frequencies(norm) == std::vector<int64_t>{14, 35, 41});
  REQUIRE(key_energy_fraction(norm, {14, 35, 41}) > 0.95);
}

TEST_CASE("neurons cluster at the frequency that explains >= 85% of their variance",
          "[analysis][neurons]") {
  const int64_t p = 11, n = 6, k = 3, j = 5;
  std::vector<double> values(static_cast<size_t>(p * p * n));
  for (int64_t a = 0; a < p; ++a)
    for (int64_t b = 0; b < p; ++b) {
      double* v = values.data() + (a * p + b) * n;
      v[0] = 2 + std::cos(angle(k, a + b, p));                           // k, fraction 1
      v[1] = std::cos(angle(k, a, p)) + 0.3 * std::sin(angle(j, b, p));  // k, 1/1.09
      v[2] = std::cos(angle(k, a, p)) + std::cos(angle(j, b, p));        // 0.5 and 0.5
      v[3] = 4;                                                          // constant
      v[4] = std::cos(angle(k, a, p)) * std::cos(angle(j, b, p));        // mixed: none
      v[5] = std::max(0.0, std::cos(angle(j, a - b, p) + 0.4));          // ReLU at j
    }
  const NeuronClusters c = cluster_neurons(from_vector(values, {p, p, n}));
  REQUIRE(c.neurons[0].cluster == k);
  REQUIRE(c.neurons[0].best_fraction == Approx(1.0).epsilon(1e-9));
  REQUIRE(c.neurons[1].cluster == k);
  REQUIRE(c.neurons[1].best_fraction == Approx(1 / 1.09).epsilon(1e-9));
  REQUIRE(c.neurons[2].cluster == 0);
  REQUIRE(c.neurons[2].best_fraction == Approx(0.5).epsilon(1e-9));
  REQUIRE(c.neurons[3].cluster == 0);
  REQUIRE(c.neurons[3].best_frequency == 0);
  REQUIRE(c.neurons[4].cluster == 0);
  REQUIRE(c.neurons[4].best_fraction < 1e-12);
  // ReLU(cos) keeps ~84% of its variance at the fundamental (the rest in harmonics).
  REQUIRE(c.neurons[5].best_frequency == j);
  REQUIRE(c.neurons[5].best_fraction > 0.7);
  REQUIRE(c.sizes.at(k) == 2);
  REQUIRE(c.unclustered == 3 + (c.neurons[5].cluster == 0 ? 1 : 0));
}

TEST_CASE(
    "neuron activations: the one-hot MLP's pre-activations, the transformer's checked "
    "against its own logits",
    "[analysis][neurons]") {
  const int64_t p = 7;
  Generator gen(3);
  nn::OneHotMLP mlp(p, 12, nn::Activation::Square, gen);
  TrainConfig mlp_config = preset("mlp");
  mlp_config.p = p;
  const NeuronActivations m = neuron_activations(mlp, mlp_config, p);
  REQUIRE(m.values.shape() == Shape{p, p, 12});
  const std::vector<double> W = mlp.W_in().to(DType::Float64).to_vector<double>();
  const std::vector<double> got = m.values.to_vector<double>();
  for (int64_t a = 0; a < p; ++a)
    for (int64_t b = 0; b < p; ++b)
      for (int64_t u = 0; u < 12; ++u)
        REQUIRE(got[(a * p + b) * 12 + u] == Approx(W[a * 12 + u] + W[(p + b) * 12 + u]));

  for (const char* ln : {"none", "pre", "post"}) {
    TrainConfig c = preset("nanda");
    c.p = p;
    c.d_model = 16;
    c.heads = 2;
    c.d_mlp = 24;
    c.ln = ln;
    c.layers = std::string(ln) == "pre" ? 2 : 1;  // an earlier block too
    const Dataset data = make_dataset(Operation::Add, p);
    Generator g(5);
    std::shared_ptr<nn::Model> model = build_model(c, data, g);
    NeuronActivations t;
    REQUIRE_NOTHROW(t = neuron_activations(*model, c, p));  // throws if the logits disagree
    REQUIRE(t.values.shape() == Shape{p, p, 24});
    for (double v : t.values.to_vector<double>()) REQUIRE(v >= 0);  // after ReLU
    REQUIRE(model->is_training());                                  // mode restored
  }
}

TEST_CASE("restricted and excluded loss of logits made of key-frequency components",
          "[analysis][restricted]") {
  for (auto [p, keys] : {std::pair<int64_t, std::vector<int64_t>>{11, {2, 5}}, {8, {1, 4}}}) {
    // L[a, b, c] = Σ_k α_k cos(w_k(a+b−c) + φ_k), plus (second case) β_c.
    const std::vector<double> alpha = {3.0, 1.5}, phi = {0.3, -1.1};
    std::vector<double> key_logits(static_cast<size_t>(p * p * p)), labels_dummy;
    std::vector<int64_t> labels, train_rows;
    for (int64_t a = 0; a < p; ++a)
      for (int64_t b = 0; b < p; ++b) {
        labels.push_back((a + b) % p);
        if ((a * 7 + b * 3) % 4 == 0) train_rows.push_back(a * p + b);
        for (int64_t c = 0; c < p; ++c) {
          double v = 0;
          for (size_t i = 0; i < keys.size(); ++i)
            v += alpha[i] * std::cos(angle(keys[i], a + b - c, p) + phi[i]);
          key_logits[(a * p + b) * p + c] = v;
        }
      }
    std::vector<int64_t> all_rows(labels.size());
    for (size_t r = 0; r < all_rows.size(); ++r) all_rows[r] = static_cast<int64_t>(r);
    std::vector<int64_t> train_labels;
    for (int64_t r : train_rows) train_labels.push_back(labels[r]);

    SECTION("only key components: the restriction is the logits, the exclusion is nothing") {
      const LogitDecomposition parts = decompose_logits(key_logits, p, p, keys);
      for (size_t i = 0; i < key_logits.size(); ++i) {
        REQUIRE(parts.restricted[i] == Approx(key_logits[i]).margin(1e-9));
        REQUIRE(parts.excluded[i] == Approx(0.0).margin(1e-9));
      }
      const RestrictedExcludedLoss loss =
          restricted_excluded_loss(key_logits, p, p, keys, labels, train_rows);
      REQUIRE(loss.restricted_all ==
              Approx(loss_accuracy(key_logits, p, all_rows, labels).loss).epsilon(1e-9));
      REQUIRE(loss.restricted_train ==
              Approx(loss_accuracy(key_logits, p, train_rows, train_labels).loss).epsilon(1e-9));
      REQUIRE(loss.excluded_train == Approx(std::log(static_cast<double>(p))).epsilon(1e-9));
      // A key frequency left out stays in the excluded logits.
      const LogitDecomposition part = decompose_logits(key_logits, p, p, {keys[0]});
      double excluded_energy = 0;
      for (double v : part.excluded) excluded_energy += v * v;
      REQUIRE(excluded_energy > 1);
    }
    SECTION("anything else goes to the excluded logits; each output's mean stays restricted") {
      std::vector<double> logits = key_logits;
      for (int64_t a = 0; a < p; ++a)
        for (int64_t b = 0; b < p; ++b)
          for (int64_t c = 0; c < p; ++c)
            logits[(a * p + b) * p + c] += 0.5 * c                                   // β_c
                                           + 2 * std::cos(angle(3, a, p)) * (c % 3)  // a alone
                                           + std::sin(angle(keys[0], a - b, p));     // a − b
      const LogitDecomposition parts = decompose_logits(logits, p, p, keys);
      for (int64_t r = 0; r < p * p; ++r)
        for (int64_t c = 0; c < p; ++c) {
          const size_t i = static_cast<size_t>(r * p + c);
          REQUIRE(parts.restricted[i] == Approx(key_logits[i] + 0.5 * c).margin(1e-9));
          REQUIRE(parts.excluded[i] == Approx(logits[i] - key_logits[i]).margin(1e-9));
        }
    }
  }
  REQUIRE_TG_ERROR(decompose_logits(std::vector<double>(11 * 11 * 11), 11, 11, {6}),
                   Contains("key frequency 6"));
}

TEST_CASE("the weight-decay fit recovers an exact exponential and its grokking time",
          "[analysis][decay]") {
  // ‖θ‖ grows to T_m = 100, then decays as exp(−r(t − T_m)); test accuracy crosses 99% at 600.
  const double r = 1e-3, norm_m = 50;
  std::vector<MetricsRow> rows;
  for (int64_t t = 0; t <= 1000; t += 10) {
    MetricsRow row;
    row.step = t;
    row.train_acc = t >= 100 ? 1 : 0.5;
    row.test_acc = t >= 600 ? 1 : 0.1;
    row.weight_norm = t < 100 ? norm_m * t / 100.0 + 1 : norm_m * std::exp(-r * (t - 100));
    row.lr = 5e-4;
    rows.push_back(row);
  }
  const GrokTimePrediction g = predict_grok_time(rows, 100, 600, 1.0);
  REQUIRE(g.fitted);
  REQUIRE(g.rate_fit == Approx(r).epsilon(1e-9));
  REQUIRE(g.r_squared == Approx(1.0).margin(1e-12));
  REQUIRE(g.window_begin == 100);
  // 20% of the way to the end is step 280; the norm is 10% down at exp(−0.11) ≈ 0.896, step 210.
  REQUIRE(g.window_end == 210);
  REQUIRE(g.norm_at_t_m == norm_m);
  REQUIRE(g.norm_at_t_g == Approx(norm_m * std::exp(-0.5)));
  REQUIRE(*g.predicted_t_g_fit == Approx(600).epsilon(1e-9));
  REQUIRE(*g.relative_error_fit == Approx(0.0).margin(1e-9));
  // The theory's rate is lr × wd = 5e-4: half the true one, twice the delay.
  REQUIRE(g.rate_theory == Approx(5e-4));
  REQUIRE(*g.predicted_t_g_theory == Approx(1100).epsilon(1e-9));
  REQUIRE(*g.relative_error_theory == Approx(1.0).epsilon(1e-9));
  // From T_m to T_g the decay is exactly exponential at r: both descriptions say so.
  REQUIRE(g.fitted_between);
  REQUIRE(g.rate_between == Approx(r).epsilon(1e-9));
  REQUIRE(g.r_squared_between == Approx(1.0).margin(1e-12));
  REQUIRE(g.rate_mean_between == Approx(r).epsilon(1e-9));

  SECTION("a decay that is not exponential: a poorer fit between T_m and T_g") {
    std::vector<MetricsRow> stepwise = rows;  // flat, then a cliff at 350, then flat
    for (MetricsRow& row : stepwise)
      if (row.step >= 100) row.weight_norm = row.step < 350 ? norm_m : norm_m * std::exp(-0.5);
    const GrokTimePrediction n = predict_grok_time(stepwise, 100, 600, 1.0);
    REQUIRE(n.fitted_between);
    REQUIRE(n.r_squared_between < 0.9);
    REQUIRE(n.rate_mean_between == Approx(r).epsilon(1e-9));  // the same start and end
  }
  SECTION("a run that never generalised: a fit, no prediction") {
    const GrokTimePrediction n = predict_grok_time(rows, 100, -1, 1.0);
    REQUIRE(n.fitted);
    REQUIRE(!n.predicted_t_g_fit);
    REQUIRE(!n.predicted_t_g_theory);
    REQUIRE_THAT(n.prediction_note, Contains("never generalised"));
  }
  SECTION("a run that never memorised: nothing") {
    const GrokTimePrediction n = predict_grok_time(rows, -1, -1, 1.0);
    REQUIRE(!n.fitted);
    REQUIRE_THAT(n.fit_note, Contains("never memorised"));
  }
  SECTION("a norm that grew between T_m and T_g: no prediction, and why") {
    std::vector<MetricsRow> growing = rows;
    for (MetricsRow& row : growing)
      if (row.step >= 100) row.weight_norm = norm_m * std::exp(r * (row.step - 100));
    const GrokTimePrediction n = predict_grok_time(growing, 100, 600, 1.0);
    REQUIRE(n.rate_fit == Approx(-r).epsilon(1e-9));
    REQUIRE(!n.predicted_t_g_fit);
    REQUIRE_THAT(n.prediction_note, Contains("not below"));
  }
}

TEST_CASE("weight norms per parameter and in total", "[analysis][norms]") {
  const WeightNorms n = weight_norms({{"a", from_vector(std::vector<float>{3, 4})},
                                      {"b", from_vector(std::vector<float>{12}, {1, 1})}});
  REQUIRE(n.groups.size() == 2);
  REQUIRE(n.groups[0] == std::pair<std::string, double>{"a", 5.0});
  REQUIRE(n.groups[1].second == 12.0);
  REQUIRE(n.total == 13.0);
}

TEST_CASE(
    "sharpness: 0 at rho 0, rho |g| to first order, larger for larger weights, and the "
    "weights and gradients left exactly as they were",
    "[analysis][sharpness]") {
  const int64_t p = 7;
  Generator gen(11);
  nn::OneHotMLP model(p, 16, nn::Activation::Relu, gen);
  model.to(DType::Float64);
  const Dataset data = make_dataset(Operation::Add, p);
  const Tensor tokens = make_tokens(data, data.pairs, TokenFormat::AB);
  const Tensor labels = make_labels(data, data.pairs);
  // Gradients present before, as after a training step: they must survive.
  cross_entropy(model.forward(tokens), labels).backward();
  std::vector<std::vector<double>> weights_before, grads_before;
  for (const Tensor& t : model.parameters()) {
    weights_before.push_back(t.to_vector<double>());
    grads_before.push_back(t.grad().to_vector<double>());
  }
  const double grad_norm = optim::global_grad_norm(model.parameters());

  const Sharpness zero = sharpness(model, tokens, labels, 0.0);
  REQUIRE(zero.value == 0.0);
  REQUIRE(zero.perturbed_loss == zero.loss);

  const double tiny = 1e-5;
  const Sharpness first_order = sharpness(model, tokens, labels, tiny);
  REQUIRE(first_order.value >= 0);
  REQUIRE(first_order.value == Approx(tiny * grad_norm).epsilon(1e-3));
  REQUIRE(first_order.rho == tiny);

  const Sharpness s = sharpness(model, tokens, labels, 0.5);
  REQUIRE(s.value > 0);
  REQUIRE(s.value >= 0.5 * grad_norm * 0.5);  // at least near the first-order rise
  REQUIRE(s.value == Approx(s.perturbed_loss - s.loss));
  REQUIRE(model.is_training());
  // Bit for bit.
  const std::vector<Tensor> params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    REQUIRE(params[i].to_vector<double>() == weights_before[i]);
    REQUIRE(params[i].grad().to_vector<double>() == grads_before[i]);
  }

  // The same network with every weight doubled (logits ×4 through ReLU's two layers) is sharper
  // at the same radius.
  Generator gen2(11);
  nn::OneHotMLP scaled(p, 16, nn::Activation::Relu, gen2);
  scaled.to(DType::Float64);
  {
    NoGradGuard no_grad;
    for (Tensor t : scaled.parameters()) t.copy_(t * 2.0);
  }
  REQUIRE(sharpness(scaled, tokens, labels, 0.5).value > s.value);
  REQUIRE_TG_ERROR(sharpness(model, tokens, labels, -1.0), Contains("rho must be >= 0"));
}

TEST_CASE("softmax collapse: a float32 row with a huge margin sums to exactly 1",
          "[analysis][collapse]") {
  const Tensor logits = from_vector(std::vector<float>{30, 0, 0, 0, 0,  // exp(−30) is absorbed
                                                       1, 0, 0, 0, 0},  // far from it
                                    {2, 5});
  REQUIRE(softmax_collapse_fraction(logits) == 0.5);
  REQUIRE(softmax_collapse_fraction(logits, {0}) == 1.0);
  REQUIRE(softmax_collapse_fraction(logits, {1}) == 0.0);
  REQUIRE(softmax_collapse_fraction(logits.to(DType::Float64), {0, 0, 1}) == Approx(2.0 / 3));
  // Shifting every logit alike changes nothing.
  REQUIRE(softmax_collapse_fraction(logits + 1000.0) == 0.5);
  REQUIRE_TG_ERROR(softmax_collapse_fraction(logits, {2}), Contains("row 2"));
}

TEST_CASE(
    "a tiny run analysed end to end: one row per snapshot, every file, numbers that agree "
    "with metrics.csv",
    "[analysis][run]") {
  tg::testing::TempDir tmp;
  const std::string run = tmp / "run";
  TrainConfig c = preset("default");
  c.p = 11;
  c.frac = 0.5;
  c.d_mlp = 48;
  c.lr = 1e-2;
  c.steps = 300;
  c.eval_every = 25;
  c.snapshot_every = 50;
  c.threads = 1;
  train(c, RunOptions{run, false, false, true});

  AnalysisOptions options;
  options.quiet = true;
  options.plots = false;
  const json a = analyze_run(run, options);
  const fs::path out = fs::path(run) / "analysis";
  for (const char* file :
       {"analysis.csv", "weight_norms.csv", "fourier.csv", "neurons.csv", "analysis.json"})
    REQUIRE(fs::exists(out / file));
  REQUIRE(a["steps"] == json({0, 50, 100, 150, 200, 250, 300}));
  REQUIRE(a["source"] == "snapshots");

  const std::vector<std::string> rows = lines_of(out / "analysis.csv");
  REQUIRE(rows.size() == 1 + 7);
  const std::vector<std::string> header = fields_of(rows[0]);
  REQUIRE(header.front() == "step");
  REQUIRE(lines_of(out / "weight_norms.csv").size() == 1 + 7);
  REQUIRE(lines_of(out / "fourier.csv").size() == 1 + 7 * 6);  // k = 0..5
  REQUIRE(lines_of(out / "neurons.csv").size() == 1 + 48);
  // The recomputed train/test accuracy and ‖θ‖ at each snapshot are metrics.csv's.
  const std::vector<MetricsRow> metrics = MetricsLog::read(run + "/metrics.csv");
  for (size_t i = 1; i < rows.size(); ++i) {
    const std::vector<std::string> f = fields_of(rows[i]);
    REQUIRE(f.size() == header.size());
    const int64_t step = std::stoll(f[0]);
    const auto m = std::find_if(metrics.begin(), metrics.end(),
                                [&](const MetricsRow& r) { return r.step == step; });
    REQUIRE(m != metrics.end());
    REQUIRE(std::stod(f[2]) == Approx(m->train_acc).margin(1e-6));
    REQUIRE(std::stod(f[4]) == Approx(m->test_acc).margin(1e-6));
    REQUIRE(std::stod(f[3]) == Approx(m->test_loss).epsilon(1e-4));
    REQUIRE(std::stod(f[8]) == Approx(m->weight_norm).epsilon(1e-5));
    REQUIRE(std::stod(f[9]) >= 0);  // sharpness
    REQUIRE(!f[5].empty());         // restricted loss: op add
  }
  REQUIRE(a["grok_time_prediction"].contains("T_m"));
  REQUIRE(a["restricted_loss"]["computed"] == true);
  REQUIRE(a["settings"]["sharpness_rho"]["fraction"] == 1e-3);

  SECTION("--every 3 keeps the last snapshot; given key frequencies are used") {
    options.every = 3;
    options.key_frequencies = {1, 4};
    const json b = analyze_run(run, options);
    REQUIRE(b["steps"] == json({0, 150, 300}));
    REQUIRE(b["key_frequencies"]["values"] == json({1, 4}));
    REQUIRE(b["restricted_loss"]["frequencies"] == json({1, 4}));
    REQUIRE(lines_of(out / "analysis.csv").size() == 1 + 3);
    options.key_frequencies = {6};
    REQUIRE_TG_ERROR(analyze_run(run, options), Contains("--key-frequencies: 6"));
  }
  SECTION("without snapshots: the final checkpoint alone") {
    fs::remove_all(fs::path(run) / "snapshots");
    const json b = analyze_run(run, options);
    REQUIRE(b["steps"] == json({300}));
    REQUIRE_THAT(b["source"].get<std::string>(), Contains("final checkpoint"));
    REQUIRE(lines_of(out / "analysis.csv").size() == 2);
  }
  SECTION("not a run directory") {
    REQUIRE_TG_ERROR(analyze_run(tmp / "nowhere", options), Contains("not a run directory"));
  }
}

TEST_CASE(
    "train --track: a row per eval, the run unchanged by it, resumed exactly, and the "
    "transformer path agreeing with analyze",
    "[analysis][track]") {
  tg::testing::TempDir tmp;
  TrainConfig c = preset("nanda");
  c.p = 7;
  c.d_model = 16;
  c.heads = 2;
  c.d_mlp = 24;
  c.frac = 0.6;
  c.lr = 3e-3;
  c.steps = 60;
  c.eval_every = 10;
  c.checkpoint_every = 30;
  c.snapshot_every = 20;
  c.threads = 1;
  train(c, RunOptions{tmp / "plain", false, false, true});
  TrainConfig tracked = c;
  tracked.track = "sharpness,collapse,fourier";
  train(tracked, RunOptions{tmp / "tracked", false, false, true});

  // The same training, to the bit: every metric but the wall time, and the final weights.
  auto without_time = [](std::vector<MetricsRow> rows) {
    for (MetricsRow& r : rows) r.elapsed_s = 0;
    return rows;
  };
  const auto plain_rows = without_time(MetricsLog::read(tmp / "plain/metrics.csv"));
  const auto tracked_rows = without_time(MetricsLog::read(tmp / "tracked/metrics.csv"));
  REQUIRE(plain_rows.size() == tracked_rows.size());
  for (size_t i = 0; i < plain_rows.size(); ++i) {
    REQUIRE(plain_rows[i].train_loss == tracked_rows[i].train_loss);
    REQUIRE(plain_rows[i].test_loss == tracked_rows[i].test_loss);
    REQUIRE(plain_rows[i].weight_norm == tracked_rows[i].weight_norm);
  }
  REQUIRE(!fs::exists(tmp / "plain/analysis_track.csv"));

  const std::vector<std::string> rows = lines_of(tmp / "tracked/analysis_track.csv");
  REQUIRE(rows.front() ==
          "step,sharpness,sharpness_rho,softmax_collapse_fraction,"
          "n_key_frequencies,effective_frequencies,top_frequency");
  REQUIRE(rows.size() == 1 + 7);  // evals at 0, 10, ..., 60
  for (size_t i = 1; i < rows.size(); ++i) {
    const std::vector<std::string> f = fields_of(rows[i]);
    REQUIRE(f.size() == 7);
    REQUIRE(std::stoll(f[0]) == 10 * static_cast<int64_t>(i - 1));
    REQUIRE(std::stod(f[1]) >= 0);
    REQUIRE(std::stoll(f[6]) >= 1);
    REQUIRE(std::stoll(f[6]) <= 3);
  }

  SECTION("a resumed run writes the same rows") {
    TrainConfig first = tracked;
    first.steps = 30;
    train(first, RunOptions{tmp / "resumed", false, false, true});
    train(tracked, RunOptions{tmp / "resumed", true, false, true});
    REQUIRE(lines_of(tmp / "resumed/analysis_track.csv") == rows);
  }
  SECTION("the tracked sharpness (float32) agrees with analyze's (float64)") {
    AnalysisOptions options;
    options.quiet = true;
    options.plots = false;
    const json a = analyze_run(tmp / "tracked", options);
    REQUIRE(a["steps"] == json({0, 20, 40, 60}));
    const std::vector<std::string> analysed = lines_of(tmp / "tracked/analysis/analysis.csv");
    for (size_t i = 1; i < analysed.size(); ++i) {
      const std::vector<std::string> f = fields_of(analysed[i]);
      const std::vector<std::string> t = fields_of(rows[1 + 2 * (i - 1)]);  // the same step
      REQUIRE(f[0] == t[0]);
      REQUIRE(std::stod(f[9]) == Approx(std::stod(t[1])).epsilon(0.02).margin(1e-4));
      REQUIRE(std::stod(f[10]) == Approx(std::stod(t[2])).epsilon(1e-5));
    }
  }
  SECTION("bad --track values name the flag") {
    TrainConfig bad = c;
    bad.track = "sharpness,entropy";
    REQUIRE_TG_ERROR(validate(bad), Contains("--track: unknown metric 'entropy'"));
    bad.track = "collapse,collapse";
    REQUIRE_TG_ERROR(validate(bad), Contains("--track: 'collapse' is listed twice"));
    bad.track = "fourier";
    bad.op = "s5";
    REQUIRE_TG_ERROR(validate(bad), Contains("--track: fourier needs Z_p"));
    // A config.json from before --track existed reads as untracked.
    json j = to_json(tracked);
    REQUIRE(j["track"] == "sharpness,collapse,fourier");
    j.erase("track");
    REQUIRE(config_from_json(j).track.empty());
  }
}
