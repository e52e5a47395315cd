// The fused linear op, act(x @ W + b): float64 gradchecks for every activation, and values and
// gradients against the composition matmul + add + activation on awkward sizes.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "op_test_util.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::relative_error;

namespace {

const Activation kActivations[] = {Activation::Identity, Activation::Relu, Activation::Gelu,
                                   Activation::Square};

Tensor composed(const Tensor& x, const Tensor& W, const Tensor& b, Activation act) {
  Tensor pre = matmul(x, W);
  if (b.defined()) pre = pre + b;
  return nn::activate(pre, act);
}

struct Grads {
  std::vector<double> y, dx, dW, db;
};

// Output and input gradients of sum(f(x, W, b) * weights).
template <typename F>
Grads run(F&& f, const Tensor& x0, const Tensor& W0, const Tensor& b0, const Tensor& weights) {
  Tensor x = x0.detach().requires_grad_(), W = W0.detach().requires_grad_();
  Tensor b = b0.defined() ? b0.detach().requires_grad_() : Tensor();
  const Tensor y = f(x, W, b);
  sum(y * weights).backward();
  return {y.to_vector<double>(), x.grad().to_vector<double>(), W.grad().to_vector<double>(),
          b.defined() ? b.grad().to_vector<double>() : std::vector<double>()};
}

}  // namespace

TEST_CASE("linear: gradcheck for every activation, with and without bias", "[linear]") {
  Generator gen(71);
  const Tensor x = randn({2, 3, 5}, gen, DType::Float64).requires_grad_();
  const Tensor W = randn({5, 7}, gen, DType::Float64).requires_grad_();
  const Tensor b = randn({7}, gen, DType::Float64).requires_grad_();
  for (Activation act : kActivations) {
    INFO("activation " << nn::activation_name(act));
    CHECK_GRADCHECK(
        [act](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2], act); },
        {x, W, b});
    CHECK_GRADCHECK(
        [act](const std::vector<Tensor>& in) { return linear(in[0], in[1], Tensor(), act); },
        {x, W});
  }
  // A transposed (non-contiguous) input and a weight that does not need its gradient.
  const Tensor xt = randn({5, 4}, gen, DType::Float64).requires_grad_();
  const Tensor W_const = randn({5, 3}, gen, DType::Float64);
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return linear(in[0].t(), in[1], in[2], Activation::Relu);
      },
      {xt, W_const, randn({3}, gen, DType::Float64).requires_grad_()});
  // Each input alone needing a gradient: backward keeps x only for dW and W only for dx, and
  // the bias's sum must not need either.
  for (Activation act : kActivations)
    for (int only = 0; only < 3; ++only) {
      INFO("activation " << nn::activation_name(act) << ", only input " << only
                         << " (x, W, b) requires grad");
      std::vector<Tensor> in = {x.detach(), W.detach(), b.detach()};
      in[static_cast<size_t>(only)].requires_grad_();
      CHECK_GRADCHECK(
          [act](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2], act); }, in);
    }
}

TEST_CASE("linear: equals matmul + bias + activation in float32 on awkward sizes", "[linear]") {
  Generator gen(72);
  for (auto [n, in, out] : {std::array<int64_t, 3>{37, 129, 67}, {3830, 128, 512}, {1, 5, 3}}) {
    const Tensor x = randn({n, in}, gen), W = randn({in, out}, gen), b = randn({out}, gen);
    const Tensor weights = randn({n, out}, gen);
    for (Activation act : kActivations)
      for (bool with_bias : {true, false}) {
        INFO(n << "x" << in << "x" << out << " " << nn::activation_name(act) << " bias "
               << with_bias);
        const Tensor bias = with_bias ? b : Tensor();
        const Grads fused =
            run([act](auto& x_, auto& W_, auto& b_) { return linear(x_, W_, b_, act); }, x, W, bias,
                weights);
        const Grads ref =
            run([act](auto& x_, auto& W_, auto& b_) { return composed(x_, W_, b_, act); }, x, W,
                bias, weights);
        CHECK(relative_error(fused.y, ref.y) < 1e-6);
        CHECK(relative_error(fused.dx, ref.dx) < 1e-5);
        CHECK(relative_error(fused.dW, ref.dW) < 1e-5);
        if (with_bias) CHECK(relative_error(fused.db, ref.db) < 1e-5);
      }
  }
}

TEST_CASE("linear: relu keeps a NaN and passes its gradient, as the composition and PyTorch",
          "[linear]") {
  // A NaN bias makes column 0 of x @ W + b NaN. PyTorch's relu keeps it (a divergence must not be
  // hidden) and its gradient is 0 only where the output is <= 0, so a NaN passes it.
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    const Tensor x = from_vector<double>({1, -2, 3, 0.5, 4, -1}).reshape({2, 3}).to(dtype);
    const Tensor W = from_vector<double>({1, -1, 2, 1, -1, 3}).reshape({3, 2}).to(dtype);
    const Tensor b = from_vector<double>({NAN, 0.25}).to(dtype);
    const Tensor weights = from_vector<double>({1, 2, 3, 4}).reshape({2, 2}).to(dtype);
    const auto relu_layer = [](auto& x_, auto& W_, auto& b_) {
      return linear(x_, W_, b_, Activation::Relu);
    };
    const auto relu_composed = [](auto& x_, auto& W_, auto& b_) {
      return composed(x_, W_, b_, Activation::Relu);
    };
    const Grads fused = run(relu_layer, x, W, b, weights);
    const Grads reference = run(relu_composed, x, W, b, weights);
    for (const Grads& g : {fused, reference}) {
      CHECK(std::isnan(g.y[0]));
      CHECK(std::isnan(g.y[2]));
      CHECK(g.db[0] == 1 + 3);  // both rows' weights on column 0 pass
      CHECK(g.dW[0] == 1 * 1 + 0.5 * 3);
    }
  }
  const Tensor v = from_vector<float>({NAN, -1, 0, 2}).requires_grad_();
  const Tensor y = relu(v);
  CHECK(std::isnan(y.to_vector<float>()[0]));
  y.sum().backward();
  CHECK(v.grad().to_vector<float>() == std::vector<float>{1, 0, 0, 1});
}

TEST_CASE("linear: a strided bias view reads the right elements", "[linear]") {
  Generator gen(11);
  const Tensor x = uniform({5, 4}, -1, 1, gen), W = uniform({4, 3}, -1, 1, gen);
  const Tensor wide = uniform({6}, -1, 1, gen);
  const Tensor strided = wide.slice(0, 0, 6, 2);  // elements 0, 2, 4: stride 2
  REQUIRE_FALSE(strided.is_contiguous());
  for (Activation act : kActivations) {
    const Tensor got = linear(x, W, strided, act);
    const Tensor want = linear(x, W, strided.contiguous(), act);
    CHECK(relative_error(got.to_vector<double>(), want.to_vector<double>()) == 0);
  }
}

TEST_CASE("linear: the bias gradient is the same for 1 and 2 threads", "[linear]") {
  Generator gen(73);
  const Tensor x = randn({1000, 33}, gen), W = randn({33, 65}, gen), b = randn({65}, gen);
  const Tensor weights = randn({1000, 65}, gen);
  const int saved = omp_get_max_threads();
  std::vector<std::vector<double>> db;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    db.push_back(
        run([](auto& x_, auto& W_, auto& b_) { return linear(x_, W_, b_, Activation::Relu); }, x, W,
            b, weights)
            .db);
  }
  omp_set_num_threads(saved);
  CHECK(db[0] == db[1]);
}

// A residual added after the activation (a residual block's h + mlp(h) in the MLP's last layer):
// float64 gradchecks, then the bits of linear(...) + residual, values and every gradient.
TEST_CASE("linear: a residual gives linear(...) + residual, to the bit", "[linear]") {
  Generator gen(74);
  const Tensor x = randn({2, 3, 5}, gen, DType::Float64).requires_grad_();
  const Tensor W = randn({5, 7}, gen, DType::Float64).requires_grad_();
  const Tensor b = randn({7}, gen, DType::Float64).requires_grad_();
  const Tensor r = randn({2, 3, 7}, gen, DType::Float64).requires_grad_();
  for (Activation act : kActivations) {
    INFO("activation " << nn::activation_name(act));
    CHECK_GRADCHECK(
        [act](const std::vector<Tensor>& in) {
          return linear(in[0], in[1], in[2], act, in[3]);
        },
        {x, W, b, r});
    // The residual a strided view, and the only input that needs a gradient.
    const Tensor rt = randn({7, 6}, gen, DType::Float64).requires_grad_();
    CHECK_GRADCHECK(
        [act, &x, &W](const std::vector<Tensor>& in) {
          return linear(x.detach().reshape({6, 5}), W.detach(), Tensor(), act, in[0].t());
        },
        {rt});

    const Tensor x32 = randn({37, 19}, gen), W32 = randn({19, 11}, gen), b32 = randn({11}, gen);
    const Tensor r32 = randn({37, 11}, gen), weights = randn({37, 11}, gen);
    std::vector<std::vector<float>> results[2];
    for (int fused = 0; fused < 2; ++fused) {
      Tensor xi = x32.detach().requires_grad_(), Wi = W32.detach().requires_grad_();
      Tensor bi = b32.detach().requires_grad_(), ri = r32.detach().requires_grad_();
      const Tensor y = fused ? linear(xi, Wi, bi, act, ri) : linear(xi, Wi, bi, act) + ri;
      sum(y * weights).backward();
      for (const Tensor& t : {y, xi.grad(), Wi.grad(), bi.grad(), ri.grad()})
        results[fused].push_back(t.to_vector<float>());
    }
    for (size_t i = 0; i < results[0].size(); ++i) {
      INFO("output " << i << " (y, dx, dW, db, dresidual)");
      CHECK(results[1][i] == results[0][i]);
    }
  }
  REQUIRE_TG_ERROR(linear(zeros({4, 5}), zeros({5, 3}), Tensor(), Activation::Identity,
                          zeros({4, 4})),
                   "linear: residual [4, 4] must have the output's shape [4, 3]");
}

// A residual block, y = x + mlp(x): x (the output of an op, as in a model; each use of a leaf
// has a sink of its own) feeds the first linear and the second's residual. The second's backward
// runs first and sends dy to x; the first linear adds it in its dx product
// (Node::adds_pending_gradients) where autograd would add the two, with the same bits: against
// the same block with x reaching the first linear through x * 1 (a node of its own, so nothing
// is pending there and the engine adds).
TEST_CASE("linear: the gradient x's other consumers sent is added by the dx product, to the bit",
          "[linear]") {
  Generator gen(75);
  for (DType dtype : {DType::Float32, DType::Float64})
    for (Activation act : kActivations) {
      INFO(dtype_name(dtype) << ", activation " << nn::activation_name(act));
      const Tensor x0 = randn({4, 9, 6}, gen, dtype), W1 = randn({6, 13}, gen, dtype);
      const Tensor b1 = randn({13}, gen, dtype), W2 = randn({13, 6}, gen, dtype);
      const Tensor weights = randn({4, 9, 6}, gen, dtype);
      std::vector<std::vector<double>> results[2];
      for (int fused = 0; fused < 2; ++fused) {
        Tensor leaf = x0.detach().requires_grad_(), w1 = W1.detach().requires_grad_();
        Tensor w2 = W2.detach().requires_grad_();
        const Tensor x = leaf * 1.0;
        const Tensor in = fused ? x : x * 1.0;
        const Tensor y = linear(linear(in, w1, b1, act), w2, Tensor(), Activation::Identity, x);
        sum(y * weights).backward();
        for (const Tensor& t : {y, leaf.grad(), w1.grad(), w2.grad()})
          results[fused].push_back(t.to_vector<double>());
      }
      for (size_t i = 0; i < results[0].size(); ++i) {
        INFO("output " << i << " (y, dx, dW1, dW2)");
        CHECK(results[1][i] == results[0][i]);
      }
    }
  // The float64 gradient of the block through the fused sum.
  const Tensor x = randn({3, 4}, gen, DType::Float64).requires_grad_();
  const Tensor W1 = randn({4, 5}, gen, DType::Float64).requires_grad_();
  const Tensor W2 = randn({5, 4}, gen, DType::Float64).requires_grad_();
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        const Tensor x = in[0] * 1.0;
        return linear(linear(x, in[1], Tensor(), Activation::Gelu), in[2], Tensor(),
                      Activation::Identity, x);
      },
      {x, W1, W2});
}

TEST_CASE("linear: shape and dtype errors name the operands", "[linear]") {
  const Tensor x = zeros({4, 5}), W = zeros({5, 3});
  REQUIRE_TG_ERROR(linear(zeros({4, 6}), W, Tensor()),
                   "linear: x [4, 6] @ W [5, 3]: x must be [..., 5]");
  REQUIRE_TG_ERROR(linear(x, W, zeros({4})), "linear: b must be [3] for W [5, 3], got [4]");
  REQUIRE_TG_ERROR(linear(x, zeros({5, 3, 1}), Tensor()),
                   "linear: W must be [in, out], got [5, 3, 1]");
  REQUIRE_THROWS_AS(linear(x, zeros({5, 3}, DType::Float64), Tensor()), tg::Error);
}

TEST_CASE("linear: empty inputs, features or outputs, forward and backward", "[linear]") {
  // As PyTorch: no input features give the bias; no output features give an empty output and
  // zero input gradients; no rows give empty gradients for x and zero ones for W and b.
  Tensor b = from_vector<double>({1, 2}).requires_grad_();
  Tensor W0 = zeros({0, 2}, DType::Float64).requires_grad_();
  const Tensor y0 = linear(zeros({3, 0}, DType::Float64), W0, b, Activation::Relu);
  CHECK(y0.shape() == Shape{3, 2});
  CHECK(y0.to_vector<double>() == std::vector<double>{1, 2, 1, 2, 1, 2});
  y0.sum().backward();
  CHECK(b.grad().to_vector<double>() == std::vector<double>{3, 3});
  CHECK(W0.grad().shape() == Shape{0, 2});

  Tensor x = ones({2, 3}, DType::Float64).requires_grad_();
  const Tensor y1 = linear(x, ones({3, 0}, DType::Float64).requires_grad_(), Tensor());
  CHECK(y1.shape() == Shape{2, 0});
  y1.sum().backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>(6, 0));

  Tensor W = ones({3, 2}, DType::Float64).requires_grad_();
  const Tensor y2 = linear(zeros({2, 0, 3}, DType::Float64).requires_grad_(), W, b);
  CHECK(y2.shape() == Shape{2, 0, 2});
  y2.sum().backward();
  CHECK(W.grad().to_vector<double>() == std::vector<double>(6, 0));
}
