// Training-variant tests (REFERENCE §2), each for its defining property: Grokfast's EMA and MA
// filters by hand and across a checkpoint; ⊥Grad's orthogonality and norm; Omnigrok's initial
// scale and norm constraint; weight decay toward theta_0 shrinking the distance by (1 - lr*wd);
// dropout in the one-hot MLP; the loss the evals report; exact resume with the variants' state;
// that the defaults leave the training loop as it was; and one short run per flag.
#include <catch2/catch.hpp>

#include "op_test_util.h"
#include "test_support.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/denormal.h"
#include "grok/checkpoint.h"
#include "grok/config.h"
#include "grok/dataset.h"
#include "grok/loss.h"
#include "grok/metrics.h"
#include "grok/split.h"
#include "grok/train_variants.h"
#include "grok/trainer.h"
#include "optim/decay_toward.h"
#include "optim/grokfast.h"
#include "optim/orthogonal_grad.h"
#include "optim/schedule.h"
#include "optim/weight_norm_control.h"
#include "tinygrok.h"

using namespace tg;
using namespace tg::grok;
using Catch::Matchers::Contains;
using optim::GrokfastFilter;
using tg::testing::TempDir;
using tg::testing::read_text;
using tg::testing::require_same_tensors;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

RunOptions fresh(const std::string& out) { return RunOptions{out, false, false, true}; }
RunOptions resumed(const std::string& out) { return RunOptions{out, true, false, true}; }

// Gives each parameter its gradient exactly: d/dp sum(p * g) = g.
void set_grads(const std::vector<Tensor>& params, const std::vector<std::vector<double>>& grads) {
  Tensor total;
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor(params[i]).zero_grad();
    const Tensor g = from_vector<double>(grads[i], params[i].shape()).to(params[i].dtype());
    const Tensor term = (params[i] * g).sum();
    total = total.defined() ? total + term : term;
  }
  total.backward();
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// The gradient of step t (t = 0, 1, ...) of the filter tests: a fixed, varied sequence.
std::vector<double> grad_at(int t) {
  return {std::sin(1.0 + t), 0.5 * std::cos(2.0 * t), t % 3 == 0 ? -1.5 : 0.25 * t};
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
double norm(const std::vector<double>& a) { return std::sqrt(dot(a, a)); }

// The one-hot MLP (x², full batch, AdamW lr 1e-2) on a + b mod 23: fast, and it moves.
TrainConfig tiny_mlp() {
  TrainConfig c = preset("mlp");
  c.p = 23;
  c.frac = 0.6;
  c.d_mlp = 64;
  c.steps = 60;
  c.eval_every = 10;
  c.checkpoint_every = 30;
  c.threads = 1;
  return c;
}

// metrics.csv as rows of numbers, without its header.
std::vector<std::vector<double>> read_metrics(const fs::path& path) {
  std::istringstream in(read_text(path));
  std::string line;
  std::getline(in, line);
  REQUIRE(line == MetricsLog::kHeader);
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::istringstream fields(line);
    for (std::string f; std::getline(fields, f, ',');) row.push_back(std::stod(f));
    REQUIRE(row.size() == 8);
    rows.push_back(row);
  }
  return rows;
}
enum Column { Step, TrainLoss, TrainAcc, TestLoss, TestAcc, WeightNorm, Lr, Elapsed };

// Runs c for its steps in one go into A, and in two halves (a checkpoint, then --resume) into
// B; the metrics (but for the clock) and the final checkpoints must be the same bit for bit.
Checkpoint check_resume_is_exact(TrainConfig c, const TempDir& tmp, const std::string& name) {
  const std::string a = tmp / (name + "_a"), b = tmp / (name + "_b");
  REQUIRE(train(c, fresh(a)) == RunStatus::Completed);
  TrainConfig first_half = c;
  first_half.steps = c.steps / 2;
  REQUIRE(first_half.steps % c.checkpoint_every == 0);
  REQUIRE(train(first_half, fresh(b)) == RunStatus::Completed);
  TrainConfig rest = config_from_json(json::parse(read_text(fs::path(b) / "config.json")));
  rest.steps = c.steps;
  REQUIRE(train(rest, resumed(b)) == RunStatus::Completed);

  auto rows_a = read_metrics(fs::path(a) / "metrics.csv");
  auto rows_b = read_metrics(fs::path(b) / "metrics.csv");
  for (auto* rows : {&rows_a, &rows_b})
    for (auto& row : *rows) row.pop_back();  // elapsed_s
  REQUIRE(rows_a.size() == static_cast<size_t>(c.steps / c.eval_every + 1));
  REQUIRE(rows_a == rows_b);
  REQUIRE(rows_a.back()[TrainLoss] != rows_a[rows_a.size() / 2][TrainLoss]);  // it moved
  const Checkpoint ca = load_checkpoint(a), cb = load_checkpoint(b);
  require_same_tensors(ca.model, cb.model);
  require_same_tensors(ca.optimizer, cb.optimizer);
  return ca;
}

bool has_entry(const Checkpoint& c, const std::string& name) {
  for (const auto& [n, t] : c.optimizer)
    if (n == name) return true;
  return false;
}

}  // namespace

// --- Grokfast ------------------------------------------------------------------------------------

TEST_CASE("grokfast ema: mu_0 = g_0, mu_t = a mu + (1 - a) g, g <- g + lamb mu, by hand",
          "[variants]") {
  Tensor w = zeros({3}, DType::Float64).requires_grad_();
  const double alpha = 0.9, lamb = 2.5;
  GrokfastFilter filter({w}, GrokfastFilter::Kind::Ema, lamb, alpha);
  std::vector<double> mu;
  for (int t = 0; t < 5; ++t) {
    const std::vector<double> g = grad_at(t);
    set_grads({w}, {g});
    filter.filter();
    if (t == 0) mu = g;
    else
      for (size_t k = 0; k < 3; ++k) mu[k] = alpha * mu[k] + (1 - alpha) * g[k];
    const std::vector<double> got = values(w.grad());
    for (size_t k = 0; k < 3; ++k) {
      INFO("step " << t << ", element " << k);
      CHECK(got[k] == Approx(g[k] + lamb * mu[k]).epsilon(1e-14).margin(1e-15));
    }
  }
  CHECK(filter.steps() == 5);
}

TEST_CASE("grokfast ma: unchanged until the window is full, then g + lamb * mean of the last w",
          "[variants]") {
  Tensor w = zeros({3}, DType::Float64).requires_grad_();
  const int window = 3;
  const double lamb = 5;
  GrokfastFilter filter({w}, GrokfastFilter::Kind::Ma, lamb, 0.98, window);
  std::vector<std::vector<double>> seen;
  for (int t = 0; t < 7; ++t) {  // the ring buffer wraps twice
    const std::vector<double> g = grad_at(t);
    seen.push_back(g);
    set_grads({w}, {g});
    filter.filter();
    const std::vector<double> got = values(w.grad());
    for (size_t k = 0; k < 3; ++k) {
      INFO("step " << t << ", element " << k);
      if (t + 1 < window) {
        CHECK(got[k] == g[k]);
      } else {
        double mean = 0;
        for (int s = t - window + 1; s <= t; ++s) mean += seen[s][k] / window;
        CHECK(got[k] == Approx(g[k] + lamb * mean).epsilon(1e-14).margin(1e-15));
      }
    }
  }
}

TEST_CASE("grokfast: state() and load_state() continue a filter exactly; bad states rejected",
          "[variants]") {
  for (const auto kind : {GrokfastFilter::Kind::Ema, GrokfastFilter::Kind::Ma}) {
    INFO((kind == GrokfastFilter::Kind::Ema ? "ema" : "ma"));
    Generator gen(3);
    const Tensor w0 = randn({4, 5}, gen), b0 = randn({5}, gen);
    auto grads_at = [](int t) {
      std::vector<double> a(20), b(5);
      for (int k = 0; k < 20; ++k) a[k] = std::sin(0.3 * k + t);
      for (int k = 0; k < 5; ++k) b[k] = std::cos(0.7 * k * t);
      return std::vector<std::vector<double>>{a, b};
    };
    Tensor w1 = w0.clone().requires_grad_(), b1 = b0.clone().requires_grad_();
    Tensor w2 = w0.clone().requires_grad_(), b2 = b0.clone().requires_grad_();
    GrokfastFilter uninterrupted({w1, b1}, kind, 2.0, 0.9, 4);
    GrokfastFilter first({w2, b2}, kind, 2.0, 0.9, 4);
    for (int t = 0; t < 6; ++t) {
      set_grads({w1, b1}, grads_at(t));
      uninterrupted.filter();
      if (t < 3) {
        set_grads({w2, b2}, grads_at(t));
        first.filter();
      }
    }
    std::map<std::string, Tensor> saved;
    for (const auto& [name, t] : first.state()) saved[name] = t.clone();
    CHECK(saved.size() == (kind == GrokfastFilter::Kind::Ema ? 3u : 5u));  // + the MA's sums
    GrokfastFilter resumed({w2, b2}, kind, 2.0, 0.9, 4);
    resumed.load_state(saved);
    CHECK(resumed.steps() == 3);
    for (int t = 3; t < 6; ++t) {
      set_grads({w2, b2}, grads_at(t));
      resumed.filter();
    }
    CHECK(values(w2.grad()) == values(w1.grad()));
    CHECK(values(b2.grad()) == values(b1.grad()));

    const std::string buffer = kind == GrokfastFilter::Kind::Ema ? "grokfast.ema.1"
                                                                 : "grokfast.ma.1";
    std::map<std::string, Tensor> missing = saved;
    missing.erase(buffer);
    REQUIRE_TG_ERROR(resumed.load_state(missing), Contains("missing entry \"" + buffer + "\""));
    std::map<std::string, Tensor> misshapen = saved;
    misshapen[buffer] = zeros({7});
    REQUIRE_TG_ERROR(resumed.load_state(misshapen), Contains(buffer));
    std::map<std::string, Tensor> extra = saved;
    extra["grokfast.ema.9"] = zeros({1});
    REQUIRE_TG_ERROR(resumed.load_state(extra), Contains("unexpected entry"));
    CHECK(resumed.steps() == 6);  // the rejected loads changed nothing
  }
}

// --- ⊥Grad ---------------------------------------------------------------------------------------

TEST_CASE("orthogonal grad: g_perp is orthogonal to w and has the norm of g", "[variants]") {
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    Generator gen(11);
    // Awkward sizes; the gradient has a large component along w, which must go.
    Tensor w = (randn({37, 13}, gen, dtype) * 2.0).detach().requires_grad_();
    Tensor b = randn({13}, gen, dtype).requires_grad_();
    const std::vector<double> wv = values(w), bv = values(b);
    std::vector<double> gw = values(randn({37, 13}, gen, DType::Float64));
    for (size_t k = 0; k < gw.size(); ++k) gw[k] += 0.8 * wv[k];
    std::vector<double> gb = values(randn({13}, gen, DType::Float64));
    set_grads({w, b}, {gw, gb});
    const double gw_norm = norm(values(w.grad())), gb_norm = norm(values(b.grad()));
    REQUIRE(std::abs(dot(wv, values(w.grad()))) > 0.5 * norm(wv) * gw_norm);  // far from ⊥

    optim::orthogonalize_gradients({w, b});
    auto check_perp = [&](const std::vector<double>& param, const Tensor& grad, double before) {
      const std::vector<double> g = values(grad);
      CHECK(std::abs(dot(param, g)) <= 1e-6 * norm(param) * norm(g));
      CHECK(norm(g) == Approx(before).epsilon(dtype == DType::Float32 ? 1e-6 : 1e-13));
    };
    check_perp(wv, w.grad(), gw_norm);
    check_perp(bv, b.grad(), gb_norm);
    // The parameters themselves are untouched.
    CHECK(values(w) == wv);
  }
}

TEST_CASE("orthogonal grad: w = 0 keeps g; g parallel to w becomes 0; no grad is skipped",
          "[variants]") {
  Tensor zero = zeros({3}, DType::Float64).requires_grad_();
  Tensor w = from_vector<double>({1, -2, 2}).requires_grad_();
  Tensor unused = ones({2}, DType::Float64).requires_grad_();
  set_grads({zero, w}, {{0.5, -1, 3}, {3, -6, 6}});
  optim::orthogonalize_gradients({zero, w, unused});
  CHECK(values(zero.grad()) == std::vector<double>{0.5, -1, 3});
  for (const double v : values(w.grad())) CHECK(std::abs(v) < 1e-15);
  CHECK_FALSE(unused.grad().defined());
}

// --- Omnigrok ------------------------------------------------------------------------------------

TEST_CASE("init scale multiplies the initial norm by alpha; the constraint holds it through "
          "training", "[variants]") {
  SECTION("scale_weights and constrain_weight_norm directly") {
    Generator gen(5);
    auto model = std::make_shared<nn::OneHotMLP>(13, 24, nn::Activation::Square, gen);
    const double before = optim::global_norm(model->parameters());
    optim::scale_weights(model->parameters(), 4);  // a power of two: exact in every element
    CHECK(optim::global_norm(model->parameters()) == 4 * before);
    optim::scale_weights(model->parameters(), 0.75);
    CHECK(optim::global_norm(model->parameters()) == Approx(3 * before).epsilon(1e-7));
    optim::constrain_weight_norm(model->parameters(), 2.5);
    CHECK(optim::global_norm(model->parameters()) == Approx(2.5).epsilon(1e-7));
  }
  SECTION("a run: step 0's weight norm is alpha times the default's") {
    TempDir tmp;
    TrainConfig c = tiny_mlp();
    c.steps = 1;
    REQUIRE(train(c, fresh(tmp / "plain")) == RunStatus::Completed);
    c.init_scale = 3;
    REQUIRE(train(c, fresh(tmp / "scaled")) == RunStatus::Completed);
    const double plain = read_metrics(fs::path(tmp / "plain") / "metrics.csv")[0][WeightNorm];
    const double scaled = read_metrics(fs::path(tmp / "scaled") / "metrics.csv")[0][WeightNorm];
    CHECK(scaled == Approx(3 * plain).epsilon(1e-7));  // metrics.csv keeps 9 digits
  }
  SECTION("a run with --weight-norm-constraint keeps ||theta|| at step 0's value") {
    TempDir tmp;
    TrainConfig c = tiny_mlp();
    c.wd = 0;
    c.lr = 3e-2;
    c.eval_every = 5;
    c.init_scale = 2;
    REQUIRE(train(c, fresh(tmp / "free")) == RunStatus::Completed);
    c.weight_norm_constraint = true;
    REQUIRE(train(c, fresh(tmp / "held")) == RunStatus::Completed);
    const auto free_rows = read_metrics(fs::path(tmp / "free") / "metrics.csv");
    const auto held_rows = read_metrics(fs::path(tmp / "held") / "metrics.csv");
    const double start = held_rows[0][WeightNorm];
    CHECK(start == free_rows[0][WeightNorm]);
    // Unconstrained, the norm moves; constrained, it stays within 1e-5 at every eval.
    CHECK(std::abs(free_rows.back()[WeightNorm] / start - 1) > 1e-2);
    for (const auto& row : held_rows) {
      INFO("step " << row[Step]);
      CHECK(row[WeightNorm] == Approx(start).epsilon(1e-5));
    }
    CHECK(held_rows.back()[TrainLoss] < held_rows[0][TrainLoss]);  // and it still learns
  }
}

// --- weight decay toward theta_0 ---------------------------------------------------------------

TEST_CASE("wd toward theta_0: with zero gradients the distance shrinks by exactly (1 - lr wd) "
          "per step", "[variants]") {
  Generator gen(8);
  const Tensor theta0 = randn({6, 5}, gen, DType::Float64);
  const double lr = 0.05, wd = 0.3;
  auto distance = [&](const Tensor& p) {
    std::vector<double> d = values(p), t = values(theta0);
    for (size_t k = 0; k < d.size(); ++k) d[k] -= t[k];
    return d;
  };
  SECTION("decoupled (AdamW), through the optimiser with zero gradients") {
    Tensor p = (theta0 + randn({6, 5}, gen, DType::Float64)).detach().requires_grad_();
    optim::AdamW opt({p}, lr, 0.9, 0.98, 1e-8, 0.0);  // the decay is decay_toward's
    std::vector<double> d = distance(p);
    for (int step = 0; step < 5; ++step) {
      set_grads({p}, {std::vector<double>(30, 0.0)});
      optim::decay_toward({p}, {theta0}, lr * wd);
      opt.step();
      const std::vector<double> now = distance(p);
      for (size_t k = 0; k < d.size(); ++k)
        CHECK(now[k] == Approx((1 - lr * wd) * d[k]).epsilon(1e-12));
      d = now;
    }
  }
  SECTION("L2 (Adam, SGD): the gradient gains wd (theta - theta_0)") {
    Tensor p = (theta0 + randn({6, 5}, gen, DType::Float64)).detach().requires_grad_();
    const std::vector<double> d = distance(p);
    std::vector<double> g(30);
    for (size_t k = 0; k < g.size(); ++k) g[k] = 0.1 * static_cast<double>(k);
    set_grads({p}, {g});
    optim::add_decay_toward_to_grad({p}, {theta0}, wd);
    const std::vector<double> got = values(p.grad());
    for (size_t k = 0; k < g.size(); ++k) CHECK(got[k] == Approx(g[k] + wd * d[k]).epsilon(1e-14));
    // And through SGD without momentum: the distance shrinks by (1 - lr wd) with g = 0.
    optim::SGD sgd({p}, lr);
    set_grads({p}, {std::vector<double>(30, 0.0)});
    optim::add_decay_toward_to_grad({p}, {theta0}, wd);
    sgd.step();
    const std::vector<double> now = distance(p);
    for (size_t k = 0; k < d.size(); ++k)
      CHECK(now[k] == Approx((1 - lr * wd) * d[k]).epsilon(1e-12));
  }
  SECTION("theta_0 = 0 gives AdamW's own decay (to rounding)") {
    Tensor p1 = randn({6, 5}, gen, DType::Float64).requires_grad_();
    Tensor p2 = p1.detach().clone().requires_grad_();
    optim::AdamW own({p1}, lr, 0.9, 0.98, 1e-8, wd), toward({p2}, lr, 0.9, 0.98, 1e-8, 0.0);
    const Tensor origin = zeros({6, 5}, DType::Float64);
    for (int step = 0; step < 3; ++step) {
      std::vector<double> g(30);
      for (size_t k = 0; k < g.size(); ++k) g[k] = std::sin(static_cast<double>(k + step));
      set_grads({p1}, {g});
      set_grads({p2}, {g});
      own.step();
      optim::decay_toward({p2}, {origin}, lr * wd);
      toward.step();
    }
    CHECK(tg::testing::relative_error(values(p2), values(p1)) < 1e-14);
  }
}

TEST_CASE("wd toward theta_0 in a run: the weights end nearer their start than with decay to 0",
          "[variants]") {
  TempDir tmp;
  TrainConfig c = tiny_mlp();
  c.steps = 40;
  c.lr = 1e-3;
  c.wd = 50;  // a strong pull (lr wd = 0.05 a step), so that where it pulls shows
  c.checkpoint_every = 20;
  REQUIRE(train(c, fresh(tmp / "zero")) == RunStatus::Completed);
  c.wd_target = "init";
  const Checkpoint init_run = check_resume_is_exact(c, tmp, "init");
  const Checkpoint zero_run = load_checkpoint(tmp / "zero");
  // theta_0 is in the checkpoint; it equals the run's initial weights (same seed, no flags).
  Generator gen(c.seed);
  const Dataset data = make_dataset(parse_operation(c.op), c.p);
  auto fresh_model = build_model(c, data, gen);
  const auto initial = fresh_model->named_parameters();
  double to_init_with_init = 0, to_init_with_zero = 0, norm_with_init = 0, norm_with_zero = 0;
  for (size_t i = 0; i < initial.size(); ++i) {
    const std::string name = "wd_target." + std::to_string(i);
    REQUIRE(has_entry(init_run, name));
    for (const auto& [n, t] : init_run.optimizer)
      if (n == name) CHECK(values(t) == values(initial[i].second));
    const std::vector<double> start = values(initial[i].second);
    const std::vector<double> a = values(init_run.model[i].second);
    const std::vector<double> b = values(zero_run.model[i].second);
    for (size_t k = 0; k < start.size(); ++k) {
      to_init_with_init += (a[k] - start[k]) * (a[k] - start[k]);
      to_init_with_zero += (b[k] - start[k]) * (b[k] - start[k]);
      norm_with_init += a[k] * a[k];
      norm_with_zero += b[k] * b[k];
    }
  }
  CHECK(to_init_with_init < 0.5 * to_init_with_zero);
  CHECK(norm_with_zero < norm_with_init);
}

// --- dropout in the one-hot MLP ------------------------------------------------------------------

TEST_CASE("one-hot MLP dropout: eval mode unaffected, training zeroes about p of the hidden units",
          "[variants]") {
  const int64_t p = 31, width = 31;
  Generator gen_a(4), gen_b(4);
  nn::OneHotMLP plain(p, width, nn::Activation::Square, gen_a);
  nn::OneHotMLP dropped(p, width, nn::Activation::Square, gen_b, 0.4);
  // W_out = identity, so that the logits are the (dropped-out) hidden units themselves.
  std::vector<double> eye(width * p, 0.0);
  for (int64_t k = 0; k < width; ++k) eye[k * p + k] = 1;
  const Tensor identity = from_vector<double>(eye, {width, p}).to(DType::Float32);
  plain.load_state_dict({{"W_in", plain.W_in().detach().clone()}, {"W_out", identity}});
  dropped.load_state_dict({{"W_in", plain.W_in().detach().clone()}, {"W_out", identity}});
  std::vector<int64_t> pairs;
  for (int64_t a = 0; a < p; ++a)
    for (int64_t b = 0; b < p; ++b) pairs.insert(pairs.end(), {a, b});
  const Tensor tokens = from_vector<int64_t>(pairs, {p * p, 2});

  plain.eval();
  dropped.eval();
  const std::vector<double> reference = values(plain.forward(tokens));
  CHECK(values(dropped.forward(tokens)) == reference);  // eval: no dropout at all
  const uint64_t offset_before = gen_b.offset();
  CHECK(values(dropped.forward(tokens)) == reference);
  CHECK(gen_b.offset() == offset_before);  // and no draws

  dropped.train();
  const std::vector<double> trained = values(dropped.forward(tokens));
  int64_t zeroed = 0, nonzero_reference = 0;
  for (size_t k = 0; k < trained.size(); ++k) {
    if (reference[k] == 0) continue;  // x² of an exact 0: not informative
    ++nonzero_reference;
    if (trained[k] == 0) ++zeroed;
    else CHECK(trained[k] == Approx(reference[k] / 0.6).epsilon(1e-6));  // kept ones scaled
  }
  REQUIRE(nonzero_reference > 25000);
  CHECK(static_cast<double>(zeroed) / nonzero_reference == Approx(0.4).margin(0.02));
  // dropout = 0 (the default) in training draws nothing: runs without it are as before.
  plain.train();
  const uint64_t plain_offset = gen_a.offset();
  CHECK(values(plain.forward(tokens)) == reference);
  CHECK(gen_a.offset() == plain_offset);
}

// --- StableMax in a run -------------------------------------------------------------------------

TEST_CASE("stablemax loss: the run trains on it and its evals report it", "[variants]") {
  TempDir tmp;
  TrainConfig c = tiny_mlp();
  c.steps = 20;
  c.loss = "stablemax";
  c.init_scale = 2;  // logits 8x larger, where StableMax and softmax part: near 0 both are ~1 + x
  REQUIRE(train(c, fresh(tmp / "run")) == RunStatus::Completed);
  const auto rows = read_metrics(fs::path(tmp / "run") / "metrics.csv");
  // Step 0's row is the fresh model's StableMax loss on each set, not its softmax loss.
  const Dataset data = make_dataset(parse_operation(c.op), c.p);
  const Split split = read_split(tmp / "run/split.txt", data);
  Generator gen(c.seed);
  auto model = build_model(c, data, gen);
  optim::scale_weights(model->parameters(), c.init_scale);
  const Tensor tokens = make_tokens(data, split.train, token_format(c));
  const Tensor labels = make_labels(data, split.train);
  const LossAccuracy stable = evaluate(*model, tokens, labels, LossKind::StableMax);
  const LossAccuracy softmax = evaluate(*model, tokens, labels, LossKind::Softmax);
  CHECK(rows[0][TrainLoss] == Approx(stable.loss).epsilon(1e-7));
  CHECK(std::abs(stable.loss - softmax.loss) > 1e-2);
  CHECK(stable.accuracy == softmax.accuracy);  // argmax either way
  CHECK(rows.back()[TrainLoss] < rows[0][TrainLoss]);
  CHECK_THROWS_AS(parse_loss("sparsemax"), Error);
}

// --- resume and defaults ------------------------------------------------------------------------

TEST_CASE("a resumed run with the variants on equals an uninterrupted one bit for bit",
          "[variants]") {
  TempDir tmp;
  SECTION("grokfast ema") {
    TrainConfig c = tiny_mlp();
    c.grokfast = "ema";
    const Checkpoint ck = check_resume_is_exact(c, tmp, "ema");
    CHECK(has_entry(ck, "grokfast.ema.0"));
    CHECK(has_entry(ck, "grokfast.steps"));
  }
  SECTION("grokfast ma, the window spanning the checkpoint") {
    TrainConfig c = tiny_mlp();
    c.grokfast = "ma";
    c.grokfast_window = 7;  // 30 = 4 * 7 + 2: the checkpoint is in mid-ring
    const Checkpoint ck = check_resume_is_exact(c, tmp, "ma");
    CHECK(has_entry(ck, "grokfast.ma.1"));
    CHECK(has_entry(ck, "grokfast.ma_sum.1"));
  }
  SECTION("⊥Grad, StableMax, init scale, norm constraint, decay toward theta_0, dropout") {
    TrainConfig c = tiny_mlp();
    c.orthogonal_grad = true;
    c.loss = "stablemax";
    c.init_scale = 1.5;
    c.weight_norm_constraint = true;
    c.wd_target = "init";
    c.dropout = 0.2;
    const Checkpoint ck = check_resume_is_exact(c, tmp, "mixed");
    CHECK(has_entry(ck, "weight_norm_constraint.norm"));
    CHECK(ck.run_state.at("generator_offset") != "0");  // dropout drew, and resumed its stream
  }
  SECTION("--init: theta_0 and the norm to hold are the loaded weights, after a resume too") {
    // A resumed run does not reload --init (its file may be gone), so both come from the
    // checkpoint: recomputed from the seed they would be the random weights instead.
    TrainConfig start = tiny_mlp();
    start.steps = 20;
    REQUIRE(train(start, fresh(tmp / "start")) == RunStatus::Completed);
    TrainConfig c = tiny_mlp();
    c.init = tmp / "start";
    c.wd_target = "init";
    c.weight_norm_constraint = true;
    const Checkpoint ck = check_resume_is_exact(c, tmp, "from_init");
    const Checkpoint loaded = load_checkpoint(tmp / "start");
    for (const auto& [name, t] : ck.optimizer)
      if (name == "wd_target.0") CHECK(values(t) == values(loaded.model[0].second));
  }
  SECTION("adam with decay toward theta_0 (the L2 form)") {
    TrainConfig c = tiny_mlp();
    c.optimizer = "adam";
    c.wd = 0.5;
    c.wd_target = "init";
    check_resume_is_exact(c, tmp, "adam_init");
  }
}

TEST_CASE("the default variants leave the training loop as it was: train() equals the plain "
          "forward, cross-entropy, backward, step loop bit for bit", "[variants]") {
  TempDir tmp;
  TrainConfig c = tiny_mlp();
  c.steps = 25;
  REQUIRE(train(c, fresh(tmp / "run")) == RunStatus::Completed);

  // The loop before the variants existed, written out by hand.
  const Dataset data = make_dataset(parse_operation(c.op), c.p);
  const Split split = read_split(tmp / "run/split.txt", data);
  Generator gen(c.seed);
  auto model = build_model(c, data, gen);
  const Tensor tokens = make_tokens(data, split.train, token_format(c));
  const Tensor labels = make_labels(data, split.train);
  optim::AdamW opt(model->parameters(), c.lr, c.beta1, c.beta2, 1e-8, c.wd);
  optim::LrSchedule schedule;
  schedule.base_lr = c.lr;
  schedule.warmup_steps = c.warmup;
  schedule.kind = optim::parse_schedule(c.schedule);
  schedule.total_steps = c.steps;
  const FlushDenormalGuard flush_denormal;  // as train() runs
  for (int64_t step = 0; step < c.steps; ++step) {
    opt.set_lr(schedule.at(step));
    const Tensor loss = cross_entropy(model->forward(tokens), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  const Checkpoint ck = load_checkpoint(tmp / "run");
  require_same_tensors(ck.model, model->named_parameters());
  require_same_tensors(ck.optimizer, opt.state());  // and nothing else in optimizer.safetensors
}

// --- config, flags and one short run per flag ----------------------------------------------------

TEST_CASE("variant flags: validation names the flag; older config.json files read the defaults",
          "[variants]") {
  auto bad = [](auto set, const std::string& flag) {
    TrainConfig c = tiny_mlp();
    set(c);
    INFO(flag);
    REQUIRE_TG_ERROR(validate(c), Contains(flag));
  };
  bad([](TrainConfig& c) { c.grokfast = "fast"; }, "--grokfast: unknown value 'fast'");
  bad([](TrainConfig& c) { c.grokfast_alpha = 1; }, "--grokfast-alpha");
  bad([](TrainConfig& c) { c.grokfast_lamb = -1; }, "--grokfast-lamb");
  bad([](TrainConfig& c) { c.grokfast_window = 0; }, "--grokfast-window");
  bad([](TrainConfig& c) { c.loss = "hinge"; }, "--loss: unknown value 'hinge'");
  bad([](TrainConfig& c) { c.init_scale = 0; }, "--init-scale");
  bad([](TrainConfig& c) { c.init_scale = NAN; }, "--init-scale");
  bad([](TrainConfig& c) { c.init_scale = 2; c.init = "somewhere"; }, "--init-scale");
  bad([](TrainConfig& c) { c.wd_target = "one"; }, "--wd-target: unknown value 'one'");
  bad([](TrainConfig& c) { c.dropout = 1; }, "--dropout");

  // A flag the run would ignore is refused when given, and only then: presets set them all.
  TrainConfig mlp = tiny_mlp();
  REQUIRE_NOTHROW(check_given_flags_apply(mlp, {"--d-mlp", "--act", "--dropout", "--p"}));
  REQUIRE_TG_ERROR(check_given_flags_apply(mlp, {"--d-mlp", "--layers"}),
                   Contains("--layers: has no effect on the mlp model"));
  REQUIRE_TG_ERROR(check_given_flags_apply(mlp, {"--ln"}), Contains("--ln: has no effect"));
  REQUIRE_TG_ERROR(check_given_flags_apply(mlp, {"--grokfast-alpha"}),
                   Contains("--grokfast-alpha: has no effect without --grokfast ema"));
  REQUIRE_TG_ERROR(check_given_flags_apply(mlp, {"--grok-patience"}),
                   Contains("--grok-patience: has no effect without --stop-at-grok"));
  mlp.grokfast = "ma";
  mlp.stop_at_grok = true;
  REQUIRE_NOTHROW(check_given_flags_apply(mlp, {"--grokfast-window", "--grokfast-lamb",
                                                "--grok-patience"}));
  REQUIRE_TG_ERROR(check_given_flags_apply(mlp, {"--grokfast-alpha"}), Contains("ema"));
  // --frac with --split, --cuda-graph on the CPU; an unknown --grokfast is left to validate().
  TrainConfig split = tiny_mlp();
  split.split_file = "split.txt";
  REQUIRE_TG_ERROR(check_given_flags_apply(split, {"--split", "--frac"}),
                   Contains("--frac: has no effect with --split"));
  REQUIRE_TG_ERROR(check_given_flags_apply(tiny_mlp(), {"--cuda-graph"}),
                   Contains("--cuda-graph: has no effect without --device cuda"));
  // --p on S5's fixed group, --wd-target without weight decay.
  TrainConfig s5 = tiny_mlp();
  s5.op = "s5";
  REQUIRE_TG_ERROR(check_given_flags_apply(s5, {"--op", "--p"}),
                   Contains("--p: has no effect with --op s5"));
  TrainConfig no_decay = tiny_mlp();
  REQUIRE_NOTHROW(check_given_flags_apply(no_decay, {"--wd", "--wd-target"}));
  no_decay.wd = 0;
  REQUIRE_TG_ERROR(check_given_flags_apply(no_decay, {"--wd", "--wd-target"}),
                   Contains("--wd-target: has no effect with --wd 0"));
  TrainConfig unknown = tiny_mlp();
  unknown.grokfast = "fast";
  REQUIRE_NOTHROW(check_given_flags_apply(unknown, {"--grokfast-alpha", "--grokfast-window"}));
  TrainConfig transformer = preset("nanda");
  REQUIRE_NOTHROW(
      check_given_flags_apply(transformer, {"--layers", "--d-model", "--heads", "--ln"}));

  TrainConfig c;
  CHECK(effective_grokfast_lamb(c) == 2.0);
  c.grokfast = "ma";
  CHECK(effective_grokfast_lamb(c) == 5.0);
  c.grokfast_lamb = 0.5;
  CHECK(effective_grokfast_lamb(c) == 0.5);

  json j = to_json(tiny_mlp());
  for (const char* key : {"grokfast", "grokfast_alpha", "grokfast_lamb", "grokfast_window", "loss",
                          "orthogonal_grad", "init_scale", "weight_norm_constraint", "wd_target"})
    j.erase(key);
  const TrainConfig old = config_from_json(j);
  CHECK(old.grokfast == "none");
  CHECK(old.loss == "softmax");
  CHECK(!old.orthogonal_grad);
  CHECK(old.init_scale == 1);
  CHECK(!old.weight_norm_constraint);
  CHECK(old.wd_target == "zero");
  CHECK(to_json(old) == to_json(tiny_mlp()));
}

TEST_CASE("each variant flag: a few steps of the default model at p = 7 run, and config.json "
          "records the flag", "[variants]") {
  TempDir tmp;
  struct Case {
    const char* name;
    void (*set)(TrainConfig&);
    const char* key;
    json value;
  };
  const std::vector<Case> cases = {
      {"grokfast ema", [](TrainConfig& c) { c.grokfast = "ema"; c.grokfast_alpha = 0.9; },
       "grokfast_alpha", 0.9},
      {"grokfast ma", [](TrainConfig& c) { c.grokfast = "ma"; c.grokfast_window = 3; },
       "grokfast_window", 3},
      {"grokfast lamb", [](TrainConfig& c) { c.grokfast = "ema"; c.grokfast_lamb = 4; },
       "grokfast_lamb", 4.0},
      {"stablemax", [](TrainConfig& c) { c.loss = "stablemax"; }, "loss", "stablemax"},
      {"orthogonal grad", [](TrainConfig& c) { c.orthogonal_grad = true; }, "orthogonal_grad",
       true},
      {"init scale", [](TrainConfig& c) { c.init_scale = 2; }, "init_scale", 2.0},
      {"weight norm constraint", [](TrainConfig& c) { c.weight_norm_constraint = true; c.wd = 0; },
       "weight_norm_constraint", true},
      {"wd target", [](TrainConfig& c) { c.wd_target = "init"; }, "wd_target", "init"},
      {"mlp dropout", [](TrainConfig& c) { c.dropout = 0.25; }, "dropout", 0.25},
  };
  for (const Case& k : cases) {
    INFO(k.name);
    TrainConfig c = preset("default");
    c.p = 7;
    c.frac = 0.5;
    c.steps = 6;
    c.eval_every = 3;
    c.threads = 1;
    k.set(c);
    const std::string out = tmp / k.name;
    REQUIRE(train(c, fresh(out)) == RunStatus::Completed);
    const json config = json::parse(read_text(fs::path(out) / "config.json"));
    CHECK(config.at(k.key) == k.value);
    const auto rows = read_metrics(fs::path(out) / "metrics.csv");
    REQUIRE(rows.size() == 3);
    for (const auto& row : rows) CHECK(std::isfinite(row[TrainLoss]));
  }
}
