// Optimiser tests: SGD, Adam and AdamW against hand-computed steps; the fused Adam/AdamW update
// against a reference built from tensor ops on random parameters of awkward sizes; skipped
// parameters; checkpoint state round trips and load errors; learning-rate schedules; gradient
// clipping and global norms.
#include <catch2/catch.hpp>

#include "test_support.h"

#include <omp.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "op_test_util.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "tinygrok.h"

using namespace tg;
using namespace tg::optim;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using tg::testing::check_tensor;
using tg::testing::relative_error;

namespace {

Tensor param(const std::vector<double>& values, DType dtype = DType::Float64,
             const Shape& shape = {}) {
  return from_vector<double>(values, shape).to(dtype).requires_grad_();
}

// Gives p the gradient `g` exactly: d/dp sum(p * g) = g.
void set_grad(Tensor p, const std::vector<double>& g) {
  p.zero_grad();
  (p * from_vector<double>(g, p.shape()).to(p.dtype())).sum().backward();
}

void set_grad(Tensor p, const Tensor& g) {
  p.zero_grad();
  (p * g).sum().backward();
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// The gradients of the hand-computed tests: step t uses kGrads[t - 1] (first 2 or 3 elements).
const std::vector<std::vector<double>> kGrads = {{0.5, -1.0, 2.0}, {1.0, 0.25, -0.5},
                                                 {-2.0, 0.5, 1.0}};

std::vector<double> first(const std::vector<double>& v, size_t n) {
  return {v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)};
}

// Runs expected.size() steps of `opt` on its single parameter with the kGrads gradients, checking
// the parameter after step t against expected[t - 1].
void check_trajectory(Optimizer& opt, const std::vector<std::vector<double>>& expected,
                      double tol) {
  Tensor p = opt.params()[0];
  for (size_t t = 1; t <= expected.size(); ++t) {
    INFO("step " << t);
    set_grad(p, first(kGrads[t - 1], static_cast<size_t>(p.numel())));
    opt.step();
    CHECK(opt.steps() == static_cast<int64_t>(t));
    check_tensor(p, {p.numel()}, expected[t - 1], tol);
  }
}

// Adam / AdamW from tensor ops (autograd/ops.h under NoGradGuard), the formulas written out the
// way torch.optim.Adam's single-tensor path applies them: the reference for the fused update.
struct ReferenceAdam {
  std::vector<Tensor> params;
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
  std::vector<Tensor> m, v;
  int64_t t = 0;

  ReferenceAdam(std::vector<Tensor> ps, double lr_, double b1, double b2, double eps_, double wd,
                bool decoupled_)
      : params(std::move(ps)), lr(lr_), beta1(b1), beta2(b2), eps(eps_), weight_decay(wd),
        decoupled(decoupled_) {
    for (const Tensor& p : params) {
      m.push_back(zeros_like(p));
      v.push_back(zeros_like(p));
    }
  }

  void step() {
    NoGradGuard no_grad;
    ++t;
    const double bias1 = 1 - std::pow(beta1, static_cast<double>(t));
    const double bias2 = 1 - std::pow(beta2, static_cast<double>(t));
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor& p = params[i];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      if (weight_decay != 0 && !decoupled) g = g + scale(p, weight_decay);
      if (weight_decay != 0 && decoupled) p.copy_(scale(p, 1 - lr * weight_decay));
      m[i] = scale(m[i], beta1) + scale(g, 1 - beta1);
      v[i] = scale(v[i], beta2) + scale(g * g, 1 - beta2);
      const Tensor denom = sqrt(v[i]) / std::sqrt(bias2) + eps;
      p.copy_(p - scale(m[i] / denom, lr / bias1));
    }
  }
};

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

Factory sgd_factory(double lr, double momentum, double weight_decay) {
  return [=](std::vector<Tensor> ps) -> std::unique_ptr<Optimizer> {
    return std::make_unique<SGD>(std::move(ps), lr, momentum, weight_decay);
  };
}

// Adam and AdamW with betas (0.9, 0.98) and eps 1e-8, as the grokking presets use.
Factory adam_factory(double lr, double weight_decay) {
  return [=](std::vector<Tensor> ps) -> std::unique_ptr<Optimizer> {
    return std::make_unique<Adam>(std::move(ps), lr, 0.9, 0.98, 1e-8, weight_decay);
  };
}

Factory adamw_factory(double lr, double weight_decay) {
  return [=](std::vector<Tensor> ps) -> std::unique_ptr<Optimizer> {
    return std::make_unique<AdamW>(std::move(ps), lr, 0.9, 0.98, 1e-8, weight_decay);
  };
}

std::map<std::string, Tensor> state_map(const Optimizer& opt) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : opt.state()) out[name] = t;
  return out;
}

}  // namespace

// --- SGD -------------------------------------------------------------------------------------

TEST_CASE("sgd: plain steps by hand", "[optim]") {
  for (const DType dtype : {DType::Float64, DType::Float32}) {
    INFO(dtype_name(dtype));
    SGD opt({param({1.0, -2.0, 0.5}, dtype)}, /*lr=*/0.1);
    // p -= 0.1 g:  p1 = (1 - 0.05, -2 + 0.1, 0.5 - 0.2)            = (0.95, -1.9, 0.3)
    //              p2 = (0.95 - 0.1, -1.9 - 0.025, 0.3 + 0.05)      = (0.85, -1.925, 0.35)
    //              p3 = (0.85 + 0.2, -1.925 - 0.05, 0.35 - 0.1)     = (1.05, -1.975, 0.25)
    check_trajectory(opt, {{0.95, -1.9, 0.3}, {0.85, -1.925, 0.35}, {1.05, -1.975, 0.25}},
                     dtype == DType::Float64 ? 1e-14 : 1e-6);
    CHECK(opt.state().empty());  // no momentum, no state
  }
}

TEST_CASE("sgd: momentum and weight decay by hand", "[optim]") {
  SGD opt({param({1.0, -2.0})}, /*lr=*/0.1, /*momentum=*/0.9, /*weight_decay=*/0.1);
  // step 1: d = g + 0.1 p = (0.5 + 0.1, -1 - 0.2) = (0.6, -1.2); buf = d (first step)
  //         p = (1 - 0.06, -2 + 0.12) = (0.94, -1.88)
  // step 2: d = (1 + 0.094, 0.25 - 0.188) = (1.094, 0.062)
  //         buf = 0.9 (0.6, -1.2) + d = (1.634, -1.018);  p = (0.94 - 0.1634, -1.88 + 0.1018)
  // step 3: d = (-2 + 0.07766, 0.5 - 0.17782) = (-1.92234, 0.32218)
  //         buf = 0.9 (1.634, -1.018) + d = (-0.45174, -0.59402)
  //         p = (0.7766 + 0.045174, -1.7782 + 0.059402)
  check_trajectory(opt, {{0.94, -1.88}, {0.7766, -1.7782}, {0.821774, -1.718798}}, 1e-14);
  const auto state = opt.state();
  REQUIRE(state.size() == 1);
  CHECK(state[0].first == "momentum.0");
  check_tensor(state[0].second, {2}, {-0.45174, -0.59402}, 1e-14);
}

// --- Adam and AdamW by hand --------------------------------------------------------------------

TEST_CASE("adamw: first three steps by hand", "[optim]") {
  for (const DType dtype : {DType::Float64, DType::Float32}) {
    INFO(dtype_name(dtype));
    AdamW opt({param({1.0, -2.0}, dtype)}, /*lr=*/0.1, /*beta1=*/0.9, /*beta2=*/0.98,
              /*eps=*/1e-8, /*weight_decay=*/0.5);
    // step 1: p *= 1 - 0.1 * 0.5 = 0.95              -> (0.95, -1.9)
    //         m = 0.1 g = (0.05, -0.1);  v = 0.02 g^2 = (0.005, 0.02)
    //         bc1 = 1 - 0.9 = 0.1, bc2 = 1 - 0.98 = 0.02: step size lr / bc1 = 1, and
    //         sqrt(v) / sqrt(bc2) = |g| = (0.5, 1), so
    //         p -= m / (|g| + 1e-8) = (0.05 / 0.50000001, -0.1 / 1.00000001)
    //           -> (0.95 - 0.099999998, -1.9 + 0.099999999) = (0.850000002, -1.800000001)
    // step 2: p *= 0.95;  m = 0.9 m + 0.1 (1, 0.25) = (0.145, -0.065)
    //         v = 0.98 v + 0.02 (1, 0.0625) = (0.0249, 0.02085);  bc1 = 0.19, bc2 = 0.0396
    //         p -= (0.1 / 0.19) m / (sqrt(v / 0.0396) + 1e-8)
    // step 3: m = (-0.0695, -0.0085), v = (0.104402, 0.025433), bc1 = 0.271, bc2 = 0.058808
    check_trajectory(opt,
                     {{0.850000002, -1.800000001},
                      {0.7112585169663902, -1.6628529738584943},
                      {0.694943311731546, -1.5749408670695304}},
                     dtype == DType::Float64 ? 1e-13 : 1e-6);
    check_tensor(state_map(opt).at("exp_avg.0"), {2}, {-0.0695, -0.0085},
                 dtype == DType::Float64 ? 1e-14 : 1e-6);
    check_tensor(state_map(opt).at("exp_avg_sq.0"), {2}, {0.104402, 0.025433},
                 dtype == DType::Float64 ? 1e-14 : 1e-6);
  }
}

TEST_CASE("adam: first three steps by hand, with L2 weight decay", "[optim]") {
  for (const DType dtype : {DType::Float64, DType::Float32}) {
    INFO(dtype_name(dtype));
    Adam opt({param({1.0, -2.0}, dtype)}, /*lr=*/0.1, /*beta1=*/0.9, /*beta2=*/0.999,
             /*eps=*/1e-8, /*weight_decay=*/0.5);
    // step 1: g += 0.5 p -> (0.5 + 0.5, -1 - 1) = (1, -2);  m = 0.1 g;  v = 0.001 g^2
    //         lr / bc1 = 1 and sqrt(v) / sqrt(bc2) = |g|, so p -= g / (|g| + 1e-8):
    //         (1 - 1 / 1.00000001, -2 + 2 / 2.00000001) * 0.1 -> (0.900000001, -1.9000000005)
    // step 2: g = (1, 0.25) + 0.5 p1 = (1.4500000005, -0.70000000025)
    //         m = (0.23500000005, -0.250000000025), v = (0.0031015000014500, 0.0044860000003500)
    // step 3: g = (-2, 0.5) + 0.5 p2 = (-1.5996483433980009, -0.40608294907049336)
    check_trajectory(opt,
                     {{0.900000001, -1.9000000005},
                      {0.8007033132039982, -1.8121658981409867},
                      {0.7868620972112751, -1.7334510476820355}},
                     dtype == DType::Float64 ? 1e-13 : 1e-6);
  }
}

TEST_CASE("adam: first three steps by hand, no weight decay, three elements", "[optim]") {
  Adam opt({param({1.0, -2.0, 0.5})}, /*lr=*/0.1);  // betas (0.9, 0.999), eps 1e-8
  // step 1 moves each element by lr * g / (|g| + 1e-8), about 0.1 against the gradient's sign.
  // step 2: m = (0.145, -0.065, 0.13), v = (0.00124975, 0.0010615, 0.004246)
  // step 3: m = (-0.0695, -0.0085, 0.217), v = (0.00524850025, 0.0013104385, 0.005241754)
  check_trajectory(opt,
                   {{0.900000002, -1.900000001, 0.4000000005},
                    {0.8034818006385094, -1.8530531845234584, 0.35305318370133487},
                    {0.8228612459927355, -1.8483098391229018, 0.2925057743069941}},
                   1e-13);
  const auto state = opt.state();
  REQUIRE(state.size() == 2);
  CHECK(state[0].first == "exp_avg.0");
  CHECK(state[1].first == "exp_avg_sq.0");
  check_tensor(state[1].second, {3}, {0.00524850025, 0.0013104385, 0.005241754}, 1e-14);
}

TEST_CASE("adam vs adamw: they differ only in where weight decay enters", "[optim]") {
  const double lr = 0.05, wd = 0.3;
  const std::vector<double> p0 = {0.7, -1.3, 0.2};

  SECTION("without weight decay they are the same optimiser, bit for bit") {
    Adam adam({param(p0)}, lr, 0.9, 0.98, 1e-8, 0.0);
    AdamW adamw({param(p0)}, lr, 0.9, 0.98, 1e-8, 0.0);
    for (int t = 0; t < 3; ++t) {
      set_grad(adam.params()[0], kGrads[t]);
      set_grad(adamw.params()[0], kGrads[t]);
      adam.step();
      adamw.step();
      CHECK(values(adam.params()[0]) == values(adamw.params()[0]));
    }
  }

  SECTION("Adam's decay is a gradient term; AdamW's scales the parameter") {
    Adam adam({param(p0)}, lr, 0.9, 0.98, 1e-8, wd);
    AdamW adamw({param(p0)}, lr, 0.9, 0.98, 1e-8, wd);
    Adam adam_by_hand({param(p0)}, lr, 0.9, 0.98, 1e-8, 0.0);   // given g + wd p
    Adam adamw_by_hand({param(p0)}, lr, 0.9, 0.98, 1e-8, 0.0);  // p *= 1 - lr wd first
    for (int t = 0; t < 3; ++t) {
      set_grad(adam.params()[0], kGrads[t]);
      set_grad(adamw.params()[0], kGrads[t]);
      std::vector<double> l2_grad = values(adam_by_hand.params()[0]);
      for (size_t j = 0; j < l2_grad.size(); ++j) l2_grad[j] = kGrads[t][j] + wd * l2_grad[j];
      set_grad(adam_by_hand.params()[0], l2_grad);
      {
        NoGradGuard no_grad;
        Tensor p = adamw_by_hand.params()[0];
        p.copy_(p * (1 - lr * wd));
      }
      set_grad(adamw_by_hand.params()[0], kGrads[t]);
      adam.step();
      adamw.step();
      adam_by_hand.step();
      adamw_by_hand.step();
      CHECK(relative_error(values(adam.params()[0]), values(adam_by_hand.params()[0])) < 1e-14);
      CHECK(relative_error(values(adamw.params()[0]), values(adamw_by_hand.params()[0])) < 1e-14);
      CHECK(relative_error(values(adam.params()[0]), values(adamw.params()[0])) > 1e-4);
    }
    // The moments see the decay only in Adam.
    CHECK(relative_error(values(state_map(adamw).at("exp_avg.0")),
                         values(state_map(adamw_by_hand).at("exp_avg.0"))) < 1e-14);
    CHECK(relative_error(values(state_map(adam).at("exp_avg.0")),
                         values(state_map(adamw).at("exp_avg.0"))) > 1e-4);
  }
}

// --- the fused update against the reference ----------------------------------------------------

TEST_CASE("adam/adamw: fused update matches the tensor-op reference on awkward sizes", "[optim]") {
  // Sizes that are not multiples of the SIMD width; the last is large enough for the update to
  // be split across threads, with a tail.
  const std::vector<Shape> shapes = {{1}, {7}, {5, 13}, {3, 11, 17}, {40009}};
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    for (const bool decoupled : {false, true}) {
      for (const double wd : {0.0, 0.1}) {
        INFO(dtype_name(dtype) << (decoupled ? " adamw" : " adam") << ", weight decay " << wd);
        Generator gen(42);
        std::vector<Tensor> fused_params, ref_params;
        for (const Shape& shape : shapes) {
          Tensor p = randn(shape, gen, dtype);
          fused_params.push_back(p.clone().requires_grad_());
          ref_params.push_back(p.clone().requires_grad_());
        }
        std::unique_ptr<Adam> fused;
        if (decoupled) fused = std::make_unique<AdamW>(fused_params, 1e-2, 0.9, 0.98, 1e-8, wd);
        else fused = std::make_unique<Adam>(fused_params, 1e-2, 0.9, 0.98, 1e-8, wd);
        ReferenceAdam ref(ref_params, 1e-2, 0.9, 0.98, 1e-8, wd, decoupled);
        const double tol = dtype == DType::Float32 ? 1e-6 : 1e-12;
        for (int step = 0; step < 5; ++step) {
          const double lr = 1e-2 * (step + 1) / 5;  // as a warm-up schedule would change it
          fused->set_lr(lr);
          ref.lr = lr;
          for (size_t i = 0; i < shapes.size(); ++i) {
            // Gradients spanning several orders of magnitude, some near zero.
            const Tensor g = randn(shapes[i], gen, dtype) * std::pow(10.0, step % 3 - 2);
            set_grad(fused_params[i], g);
            set_grad(ref_params[i], g);
          }
          fused->step();
          ref.step();
          const auto state = state_map(*fused);
          for (size_t i = 0; i < shapes.size(); ++i) {
            INFO("step " << step + 1 << ", parameter " << i << " " << shape_str(shapes[i]));
            CHECK(relative_error(values(fused_params[i]), values(ref.params[i])) < tol);
            CHECK(relative_error(values(state.at("exp_avg." + std::to_string(i))),
                                 values(ref.m[i])) < tol);
            CHECK(relative_error(values(state.at("exp_avg_sq." + std::to_string(i))),
                                 values(ref.v[i])) < tol);
          }
        }
      }
    }
  }
}

// SGD's one-pass CPU update (optim/sgd.cpp) against the same formulas as tensor ops, for every
// combination of momentum and decay (each is its own compiled loop), float32 and float64, on
// sizes that are not multiples of the SIMD width, the last one split across threads.
TEST_CASE("sgd: fused update matches the tensor-op reference on awkward sizes", "[optim]") {
  const std::vector<Shape> shapes = {{1}, {7}, {5, 13}, {3, 11, 17}, {40009}};
  for (const DType dtype : {DType::Float32, DType::Float64})
    for (const double momentum : {0.0, 0.9})
      for (const double wd : {0.0, 0.1}) {
        INFO(dtype_name(dtype) << ", momentum " << momentum << ", weight decay " << wd);
        Generator gen(43);
        std::vector<Tensor> fused_params, ref_params, bufs;
        for (const Shape& shape : shapes) {
          const Tensor p = randn(shape, gen, dtype);
          fused_params.push_back(p.clone().requires_grad_());
          ref_params.push_back(p.clone());
          bufs.push_back(zeros_like(p));
        }
        SGD fused(fused_params, 0.1, momentum, wd);
        const double tol = dtype == DType::Float32 ? 1e-6 : 1e-13;
        for (int step = 0; step < 4; ++step) {
          const double lr = 0.1 * (step + 1) / 4;  // as a warm-up schedule would change it
          fused.set_lr(lr);
          for (size_t i = 0; i < shapes.size(); ++i) {
            const Tensor g = randn(shapes[i], gen, dtype) * std::pow(10.0, step % 3 - 1);
            set_grad(fused_params[i], g);
            // torch.optim.SGD: d = g + wd p; buf = momentum buf + d (buf = d at first);
            // p -= lr d.
            NoGradGuard no_grad;
            Tensor d = wd != 0 ? g + scale(ref_params[i], wd) : g;
            if (momentum != 0) d = bufs[i] = scale(bufs[i], momentum) + d;
            ref_params[i] = ref_params[i] - scale(d, lr);
          }
          fused.step();
          for (size_t i = 0; i < shapes.size(); ++i) {
            INFO("step " << step + 1 << ", parameter " << i << " " << shape_str(shapes[i]));
            CHECK(relative_error(values(fused_params[i]), values(ref_params[i])) < tol);
          }
        }
      }
}

TEST_CASE("optim: the fused updates do not depend on the number of threads", "[optim]") {
  const std::vector<std::pair<std::string, Factory>> cases = {
      {"sgd", sgd_factory(0.1, 0.9, 0.1)},
      {"adam", adam_factory(1e-3, 0.1)},
      {"adamw", adamw_factory(1e-3, 1.0)}};
  Generator gen(3);
  // Large enough to be split across threads; 70001 leaves a tail after the SIMD vectors.
  const Tensor init = randn({70001}, gen), grad = randn({70001}, gen);
  const int saved_threads = omp_get_max_threads();
  for (const auto& [name, make] : cases) {
    INFO(name);
    std::vector<std::vector<double>> results;
    for (const int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      Tensor p = init.clone().requires_grad_();
      auto opt = make({p});
      for (int step = 0; step < 2; ++step) {
        set_grad(p, grad);
        opt->step();
      }
      results.push_back(values(p));
    }
    CHECK(results[0] == results[1]);
    CHECK(results[0] == results[2]);
  }
  omp_set_num_threads(saved_threads);
}

// --- optimiser behaviour shared by all ---------------------------------------------------------

TEST_CASE("optim: parameters are updated in place through the shared handles", "[optim]") {
  Tensor p = param({1.0, 2.0});
  const Tensor alias = p;  // the model's handle
  const void* data = p.storage()->data();
  SGD opt({p}, 0.5);
  CHECK(opt.params()[0].same(p));
  set_grad(p, {1.0, 1.0});
  opt.step();
  CHECK(p.storage()->data() == data);
  CHECK(values(alias) == std::vector<double>{0.5, 1.5});
  CHECK(p.requires_grad());
  CHECK(p.is_leaf());  // the update recorded nothing
}

TEST_CASE("optim: parameters without a gradient are untouched", "[optim]") {
  const std::vector<Factory> factories = {sgd_factory(0.1, 0.9, 0.1), adam_factory(0.1, 0.1),
                                          adamw_factory(0.1, 0.01)};
  for (const auto& make : factories) {
    Tensor with = param({1.0, 2.0}), without = param({3.0, -4.0, 5.0}, DType::Float32);
    auto opt = make({with, without});
    for (int step = 0; step < 2; ++step) {
      set_grad(with, {0.5, -0.5});
      opt->step();
    }
    CHECK(opt->steps() == 2);
    CHECK(values(with) != std::vector<double>{1.0, 2.0});
    CHECK(values(without) == std::vector<double>{3.0, -4.0, 5.0});
    CHECK_FALSE(without.grad().defined());
    for (const auto& [name, t] : opt->state())
      if (name.ends_with(".1")) CHECK(values(t) == std::vector<double>{0, 0, 0});
  }
}

TEST_CASE("optim: zero_grad, lr and steps", "[optim]") {
  Tensor a = param({1.0}), b = param({2.0, 3.0});
  Adam opt({a, b}, 0.01);
  CHECK(opt.lr() == 0.01);
  opt.set_lr(0.5);
  CHECK(opt.lr() == 0.5);
  CHECK(opt.steps() == 0);
  set_grad(a, {1.0});
  set_grad(b, {1.0, 1.0});
  opt.step();
  CHECK(opt.steps() == 1);
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
  opt.step();  // nothing to update, but the step counts
  CHECK(opt.steps() == 2);
  REQUIRE_TG_ERROR(opt.set_lr(-1), Contains("learning rate -1"));
  REQUIRE_TG_ERROR(opt.set_lr(NAN), Contains("learning rate"));
}

TEST_CASE("optim: constructor and step errors", "[optim]") {
  REQUIRE_TG_ERROR(SGD({}, 0.1), Contains("empty parameter list"));
  REQUIRE_TG_ERROR(SGD({Tensor()}, 0.1), Contains("parameter 0 is an undefined tensor"));
  REQUIRE_TG_ERROR(SGD({arange(3)}, 0.1), Contains("parameter 0") && Contains("int64"));
  Tensor leaf = param({1.0, 2.0});
  REQUIRE_TG_ERROR(SGD({leaf * 2.0}, 0.1), Contains("parameter 0") && Contains("leaf"));
  REQUIRE_TG_ERROR(Adam({leaf, leaf}, 0.1),
                   Contains("parameter 1 is the same tensor as parameter 0"));
  Tensor transposed = zeros({3, 4}).t();  // a leaf view with strides [1, 4]
  transposed.requires_grad_();
  REQUIRE_TG_ERROR(AdamW({transposed}), Contains("not contiguous") && Contains("[4, 3]"));
  REQUIRE_TG_ERROR(Adam({leaf}, 0.1, 1.0), StartsWith("adam: beta1 1"));
  REQUIRE_TG_ERROR(AdamW({leaf}, 0.1, 0.9, -0.1), StartsWith("adamw: beta2 -0.1"));
  REQUIRE_TG_ERROR(AdamW({leaf}, 0.1, 0.9, 0.98, -1), StartsWith("adamw: eps"));
  REQUIRE_TG_ERROR(Adam({leaf}, 0.1, 0.9, 0.98, 1e-8, -1), StartsWith("adam: weight decay"));
  REQUIRE_TG_ERROR(SGD({leaf}, 0.1, -0.5), StartsWith("sgd: momentum"));
  REQUIRE_TG_ERROR(SGD({leaf}, -0.1), Contains("learning rate"));
}

// --- checkpoints -------------------------------------------------------------------------------

namespace {

std::vector<Tensor> round_trip_params() {
  Generator gen(7);
  return {randn({4, 5}, gen).requires_grad_(), randn({7}, gen).requires_grad_(),
          randn({3, 3}, gen, DType::Float64).requires_grad_()};
}

void train(Optimizer& opt, int64_t from, int64_t to) {
  for (int64_t step = from; step < to; ++step) {
    Generator gen(1000 + static_cast<uint64_t>(step));  // the same gradients for every run
    for (const Tensor& p : opt.params()) set_grad(p, randn(p.shape(), gen, p.dtype()));
    opt.step();
  }
}

}  // namespace

TEST_CASE("optim: state and load_state resume bit-identically", "[optim]") {
  const std::vector<std::pair<std::string, Factory>> cases = {
      {"sgd", sgd_factory(0.05, 0.9, 0.01)},
      {"adam", adam_factory(0.01, 0.1)},
      {"adamw", adamw_factory(0.01, 1.0)}};
  for (const auto& [name, make] : cases) {
    INFO(name);
    auto uninterrupted = make(round_trip_params());
    train(*uninterrupted, 0, 6);

    auto before = make(round_trip_params());
    train(*before, 0, 3);
    // What a checkpoint holds: copies of the parameters and of the state, and the step count.
    std::vector<Tensor> saved_params;
    for (const Tensor& p : before->params()) saved_params.push_back(p.detach().clone());
    std::map<std::string, Tensor> saved_state;
    for (const auto& [key, t] : before->state()) saved_state[key] = t.clone();
    train(*before, 3, 5);  // the original goes on; the copies must not follow it

    std::vector<Tensor> resumed_params;
    for (const Tensor& p : saved_params) resumed_params.push_back(p.clone().requires_grad_());
    auto resumed = make(resumed_params);
    resumed->load_state(saved_state, 3);
    CHECK(resumed->steps() == 3);
    train(*resumed, 3, 6);

    for (size_t i = 0; i < resumed_params.size(); ++i)
      CHECK(values(resumed->params()[i]) == values(uninterrupted->params()[i]));
    const auto a = uninterrupted->state(), b = resumed->state();
    REQUIRE(a.size() == b.size());
    CHECK(a.size() == (name == "sgd" ? 3u : 6u));
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].first == b[i].first);
      CHECK(values(a[i].second) == values(b[i].second));
    }
  }
}

TEST_CASE("optim: load_state rejects a bad checkpoint and keeps its state", "[optim]") {
  Tensor w = zeros({2, 3}).requires_grad_(), b = zeros({4}, DType::Float64).requires_grad_();
  AdamW opt({w, b});
  const std::map<std::string, Tensor> good = {{"exp_avg.0", ones({2, 3})},
                                              {"exp_avg_sq.0", ones({2, 3})},
                                              {"exp_avg.1", ones({4}, DType::Float64)},
                                              {"exp_avg_sq.1", ones({4}, DType::Float64)}};
  auto with = [&](const std::string& key, const Tensor& t) {
    auto s = good;
    s[key] = t;
    return s;
  };
  auto without = [&](const std::string& key) {
    auto s = good;
    s.erase(key);
    return s;
  };
  REQUIRE_TG_ERROR(opt.load_state(without("exp_avg_sq.1"), 5),
                   StartsWith("adamw: load_state: missing entry \"exp_avg_sq.1\""));
  REQUIRE_TG_ERROR(opt.load_state(with("momentum.0", ones({2, 3})), 5),
                   Contains("unexpected entry \"momentum.0\""));
  REQUIRE_TG_ERROR(opt.load_state(with("exp_avg.2", ones({1})), 5),
                   Contains("unexpected entry \"exp_avg.2\""));
  REQUIRE_TG_ERROR(opt.load_state(with("exp_avg.0", ones({3, 2})), 5),
                   Contains("\"exp_avg.0\"") && Contains("shape [3, 2], expected [2, 3]"));
  REQUIRE_TG_ERROR(opt.load_state(with("exp_avg_sq.1", ones({4})), 5),
                   Contains("\"exp_avg_sq.1\"") && Contains("float32, expected float64"));
  REQUIRE_TG_ERROR(opt.load_state(with("exp_avg.1", Tensor()), 5),
                   Contains("\"exp_avg.1\" is an undefined tensor"));
  REQUIRE_TG_ERROR(opt.load_state(good, -1), Contains("step count -1"));
  // Nothing was loaded by the failed calls, although the first entries were valid.
  for (const auto& [key, t] : opt.state()) {
    INFO(key);
    CHECK(sum(t).item() == 0);
  }
  CHECK(opt.steps() == 0);

  opt.load_state(good, 5);
  CHECK(opt.steps() == 5);
  for (const auto& [key, t] : opt.state()) CHECK(sum(t).item() == t.numel());
  CHECK_FALSE(opt.state()[0].second.same(good.at("exp_avg.0")));  // copied, not aliased

  SGD plain({w}, 0.1);
  REQUIRE_TG_ERROR(plain.load_state({{"momentum.0", zeros({2, 3})}}, 1),
                   StartsWith("sgd: load_state: unexpected entry \"momentum.0\"") &&
                       Contains("keeps no state"));
  plain.load_state({}, 4);
  CHECK(plain.steps() == 4);
  SGD heavy({w}, 0.1, 0.9);
  REQUIRE_TG_ERROR(heavy.load_state({}, 1), Contains("missing entry \"momentum.0\""));
}

// --- learning-rate schedules -------------------------------------------------------------------

TEST_CASE("schedule: linear warm-up then constant, as Nanda's LambdaLR", "[optim]") {
  const LrSchedule s{.base_lr = 1e-3, .warmup_steps = 10};
  CHECK(s.at(0) == 0);  // the first step runs at lr 0, as in the original notebook
  CHECK(s.at(1) == Approx(1e-4).epsilon(1e-12));
  CHECK(s.at(5) == Approx(5e-4).epsilon(1e-12));
  CHECK(s.at(9) == Approx(9e-4).epsilon(1e-12));
  CHECK(s.at(10) == 1e-3);
  CHECK(s.at(11) == 1e-3);
  CHECK(s.at(100000) == 1e-3);
  const LrSchedule flat{.base_lr = 0.02};
  CHECK(flat.at(0) == 0.02);
  CHECK(flat.at(7) == 0.02);
}

TEST_CASE("schedule: cosine decay from base_lr to min_lr", "[optim]") {
  const LrSchedule s{.base_lr = 1e-3, .warmup_steps = 10, .kind = LrSchedule::Kind::Cosine,
                     .total_steps = 110, .min_lr = 1e-5};
  CHECK(s.at(0) == 0);
  CHECK(s.at(5) == Approx(5e-4).epsilon(1e-12));
  CHECK(s.at(10) == 1e-3);                                   // end of warm-up: the peak
  CHECK(s.at(60) == Approx((1e-3 + 1e-5) / 2).epsilon(1e-12));  // half way
  CHECK(s.at(110) == 1e-5);                                  // total_steps: the floor
  CHECK(s.at(1000) == 1e-5);
  for (int64_t step = 10; step < 110; ++step) CHECK(s.at(step + 1) < s.at(step));
  const LrSchedule no_warmup{.base_lr = 0.1, .kind = LrSchedule::Kind::Cosine,
                             .total_steps = 4};
  CHECK(no_warmup.at(0) == 0.1);
  CHECK(no_warmup.at(2) == Approx(0.05).epsilon(1e-12));
  CHECK(no_warmup.at(4) == 0);
}

TEST_CASE("schedule: parsing and errors", "[optim]") {
  CHECK(parse_schedule("constant") == LrSchedule::Kind::Constant);
  CHECK(parse_schedule("cosine") == LrSchedule::Kind::Cosine);
  REQUIRE_TG_ERROR(parse_schedule("linear"),
                   Contains("\"linear\"") && Contains("constant or cosine"));
  const LrSchedule bad{.base_lr = 1e-3, .warmup_steps = 10, .kind = LrSchedule::Kind::Cosine,
                       .total_steps = 10};
  CHECK(bad.at(3) == Approx(3e-4));  // warm-up is still defined
  REQUIRE_TG_ERROR(bad.at(10), Contains("total_steps (10) > warmup_steps (10)"));
  REQUIRE_TG_ERROR(LrSchedule{.base_lr = 1}.at(-1), Contains("step -1"));
}

// --- clipping and norms --------------------------------------------------------------------------

TEST_CASE("clip: global gradient norm, clipping to max_norm", "[optim]") {
  Tensor a = param({0.0, 0.0}, DType::Float32), b = param({0.0}), idle = param({100.0});
  const std::vector<Tensor> params = {a, b, idle};  // idle has no gradient: skipped
  auto reset = [&] {
    set_grad(a, {3.0, 4.0});
    set_grad(b, {12.0});
  };
  reset();
  CHECK(global_grad_norm(params) == 13);  // sqrt(9 + 16 + 144)

  SECTION("a large gradient is scaled to max_norm") {
    CHECK(clip_grad_norm(params, 6.5) == 13);  // the norm before clipping
    const double factor = 6.5 / (13 + 1e-6);
    check_tensor(a.grad(), {2}, {3 * factor, 4 * factor}, 1e-7);
    check_tensor(b.grad(), {1}, {12 * factor}, 1e-15);
    CHECK(global_grad_norm(params) == Approx(6.5).epsilon(1e-6));
    CHECK_FALSE(idle.grad().defined());
  }
  SECTION("a small gradient is left alone") {
    CHECK(clip_grad_norm(params, 20) == 13);
    CHECK(values(a.grad()) == std::vector<double>{3, 4});
    CHECK(values(b.grad()) == std::vector<double>{12});
  }
  SECTION("no gradients at all") {
    a.zero_grad();
    b.zero_grad();
    CHECK(global_grad_norm(params) == 0);
    CHECK(clip_grad_norm(params, 1) == 0);
  }
  REQUIRE_TG_ERROR(clip_grad_norm(params, -1), Contains("max_norm -1"));
}

TEST_CASE("clip: global norm of weights", "[optim]") {
  CHECK(global_norm({from_vector<float>({3, 4}), from_vector<double>({12}, {1, 1})}) == 13);
  CHECK(global_norm({}) == 0);
  // Large and strided: the sum is taken in double and does not depend on the thread count.
  Generator gen(11);
  const Tensor big = randn({301, 407}, gen);
  const Tensor view = big.t();
  double reference = 0;
  for (const float x : big.to_vector<float>()) reference += static_cast<double>(x) * x;
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one_thread = global_norm({view});
  omp_set_num_threads(2);
  const double two_threads = global_norm({view});
  omp_set_num_threads(saved_threads);
  CHECK(one_thread == two_threads);
  CHECK(one_thread == Approx(std::sqrt(reference)).epsilon(1e-13));
  REQUIRE_TG_ERROR(global_norm({Tensor()}), Contains("tensor 0 is an undefined tensor"));
  REQUIRE_TG_ERROR(global_norm({zeros({1}), arange(3)}), Contains("tensor 1") && Contains("int64"));
}

// The in-place scaling's CPU loop (optim/clip.cpp) on gradients long enough to be split across
// threads, with an odd tail: g * max_norm / (norm + 1e-6) everywhere, for either thread count.
TEST_CASE("clip: large gradients are scaled as g * factor, for 1 and 2 threads", "[optim]") {
  Generator gen(12);
  const Tensor g32 = randn({70001}, gen), g64 = randn({3, 40009}, gen, DType::Float64);
  const int saved_threads = omp_get_max_threads();
  for (const int threads : {1, 2}) {
    INFO(threads << " threads");
    omp_set_num_threads(threads);
    Tensor a = zeros({70001}).requires_grad_(), b = zeros({3, 40009}, DType::Float64);
    b.requires_grad_();
    set_grad(a, g32);
    set_grad(b, g64);
    const double norm = global_norm({g32, g64});
    CHECK(clip_grad_norm({a, b}, 2.5) == norm);
    const double factor = 2.5 / (norm + 1e-6);
    CHECK(relative_error(values(a.grad()), values(g32 * factor)) < 1e-7);
    CHECK(relative_error(values(b.grad()), values(g64 * factor)) < 1e-15);
  }
  omp_set_num_threads(saved_threads);
}

TEST_CASE("adam_step on the CPU: the norms change no bit of the update", "[optim]") {
  // Sizes below, at and across the norm blocks (8192), with an odd tail; float32 and float64;
  // one and two threads give the same norms.
  const std::vector<int64_t> sizes = {5, 0, 8192, 20001, 1};
  Backend& cpu = backend_for(Device::cpu());
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (bool decoupled : {false, true}) {
      INFO(dtype_name(dtype) << (decoupled ? " decoupled" : " L2"));
      Generator gen(21);
      std::vector<Tensor> p, g, m, v, p2, m2, v2;
      for (int64_t n : sizes) {
        p.push_back(randn({n}, gen, dtype));
        g.push_back(randn({n}, gen, dtype));
        m.push_back(zeros({n}, dtype));
        v.push_back(zeros({n}, dtype));
        p2.push_back(p.back().clone());
        m2.push_back(zeros({n}, dtype));
        v2.push_back(zeros({n}, dtype));
      }
      AdamHyper h;
      h.lr = 1e-2;
      h.weight_decay = 0.1;
      h.decoupled = decoupled;
      double grad_by_hand = 0;
      for (const Tensor& t : g)
        for (double x : t.to_vector<double>()) grad_by_hand += x * x;
      cpu.adam_step(p, g, m, v, h, nullptr, nullptr);
      const int saved_threads = omp_get_max_threads();
      double norms[2][2];
      for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        std::vector<Tensor> p3, m3, v3;
        for (size_t i = 0; i < sizes.size(); ++i) {
          p3.push_back(p2[i].clone());
          m3.push_back(m2[i].clone());
          v3.push_back(v2[i].clone());
        }
        double* out = norms[threads - 1];
        cpu.adam_step(p3, g, m3, v3, h, &out[0], &out[1]);
        for (size_t i = 0; i < sizes.size(); ++i) {
          CHECK(p3[i].to_vector<double>() == p[i].to_vector<double>());
          CHECK(m3[i].to_vector<double>() == m[i].to_vector<double>());
          CHECK(v3[i].to_vector<double>() == v[i].to_vector<double>());
        }
      }
      omp_set_num_threads(saved_threads);
      CHECK(norms[0][0] == norms[1][0]);
      CHECK(norms[0][1] == norms[1][1]);
      CHECK(norms[0][0] == Approx(grad_by_hand).epsilon(1e-13));
      CHECK(std::sqrt(norms[0][1]) == Approx(global_norm(p)).epsilon(1e-13));
    }
  }
  REQUIRE_TG_ERROR(cpu.adam_step({zeros({2})}, {zeros({3})}, {zeros({2})}, {zeros({2})},
                                 AdamHyper{}, nullptr, nullptr),
                   Contains("adam_step: gradient 0 is float32 [3]"));
}

// --- the step count on the device (what a CUDA-graph step needs) ------------------------------

TEST_CASE("adam/adamw: the step count and schedule on the device give the host-driven steps, bit for bit",
          "[optim]") {
  LrSchedule schedule{0.05};
  schedule.warmup_steps = 3;
  schedule.kind = LrSchedule::Kind::Cosine;
  schedule.total_steps = 6;  // reached within the test: lr then stays at min_lr
  schedule.min_lr = 1e-3;
  for (const bool decoupled : {false, true}) {
    INFO((decoupled ? "adamw" : "adam"));
    Generator gen(5);
    std::vector<Tensor> host_params, device_params;
    for (const Shape& shape : std::vector<Shape>{{7}, {5, 13}}) {
      const Tensor p = randn(shape, gen);
      host_params.push_back(p.clone().requires_grad_());
      device_params.push_back(p.clone().requires_grad_());
    }
    const auto make = [&](std::vector<Tensor> ps) -> std::unique_ptr<Adam> {
      if (decoupled) return std::make_unique<AdamW>(std::move(ps), 1.0, 0.9, 0.98, 1e-8, 0.5);
      return std::make_unique<Adam>(std::move(ps), 1.0, 0.9, 0.98, 1e-8, 0.5);
    };
    auto host = make(host_params), device = make(device_params);
    device->keep_step_on_device(schedule.rule());
    CHECK(device->step_on_device());
    for (int step = 0; step < 8; ++step) {
      for (size_t i = 0; i < host_params.size(); ++i) {
        const Tensor g = randn(host_params[i].shape(), gen);
        set_grad(host_params[i], g);
        set_grad(device_params[i], g);
      }
      host->set_lr(schedule.at(host->steps()));
      host->step();
      device->step();  // its lr comes from the schedule, not from set_lr
      for (size_t i = 0; i < host_params.size(); ++i)
        REQUIRE(values(device_params[i]) == values(host_params[i]));
    }
    CHECK(device->steps() == 8);

    {  // a loaded checkpoint sets the device's count, and the steps go on from it
      auto resumed_params = std::vector<Tensor>{host_params[0].detach().clone().requires_grad_(),
                                                host_params[1].detach().clone().requires_grad_()};
      auto resumed = make(resumed_params);
      resumed->keep_step_on_device(schedule.rule());
      std::map<std::string, Tensor> saved;
      for (const auto& [name, t] : host->state()) saved.emplace(name, t.clone());
      resumed->load_state(saved, host->steps());
      CHECK(resumed->steps() == 8);
      for (size_t i = 0; i < host_params.size(); ++i) {
        const Tensor g = randn(host_params[i].shape(), gen);
        set_grad(host_params[i], g);
        set_grad(resumed_params[i], g);
      }
      host->set_lr(schedule.at(host->steps()));
      host->step();
      resumed->step();
      for (size_t i = 0; i < host_params.size(); ++i)
        CHECK(values(resumed_params[i]) == values(host_params[i]));
    }
    {  // a step with no gradients still counts
      for (Tensor& p : device_params) p.zero_grad();
      device->step();
      CHECK(device->steps() == 9);
    }
  }
}

TEST_CASE("optimizer: keep_step_on_device is refused where it cannot work", "[optim]") {
  Tensor p = zeros({3}).requires_grad_();
  SGD sgd({p}, 0.1);
  REQUIRE_TG_ERROR(sgd.keep_step_on_device(LrSchedule{0.1}.rule()),
                   Contains("cannot keep its step count on the device"));
  AdamW adamw({p}, 0.1);
  LrRule bad_cosine{0.1, 5, true, 5, 0};
  REQUIRE_TG_ERROR(adamw.keep_step_on_device(bad_cosine), Contains("total_steps > warmup_steps"));
  CHECK(!adamw.step_on_device());
}
