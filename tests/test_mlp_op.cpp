// The mlp op, act(x @ W_in + b_in) @ W_out + b_out (+ residual) with the ReLU's backward in the
// second layer's input-gradient product: float64 gradchecks, and values and gradients bit for bit
// against the composition of two linear ops (a residual block's skip included), and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "op_test_util.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;

namespace {

const Activation kActivations[] = {Activation::Identity, Activation::Relu, Activation::Gelu,
                                   Activation::Square};

Tensor composed(const Tensor& x, const Tensor& W_in, const Tensor& b_in, Activation act,
                const Tensor& W_out, const Tensor& b_out, const Tensor& residual) {
  return linear(linear(x, W_in, b_in, act), W_out, b_out, Activation::Identity, residual);
}

// Normal values times `scale`, rounded to integers: sums of products of them are exact, and
// many are exactly 0.
Tensor integers(const Shape& shape, double scale, Generator& gen, DType dtype) {
  std::vector<double> v = randn(shape, gen, DType::Float64).to_vector<double>();
  for (double& e : v) e = std::round(e * scale);
  return from_vector(v, shape).to(dtype);
}

}  // namespace

TEST_CASE("mlp: gradcheck for every activation, with and without biases and residual",
          "[mlp]") {
  Generator gen(81);
  const Tensor x = randn({2, 3, 5}, gen, DType::Float64).requires_grad_();
  const Tensor W_in = randn({5, 7}, gen, DType::Float64).requires_grad_();
  const Tensor b_in = randn({7}, gen, DType::Float64).requires_grad_();
  const Tensor W_out = randn({7, 4}, gen, DType::Float64).requires_grad_();
  const Tensor b_out = randn({4}, gen, DType::Float64).requires_grad_();
  const Tensor r = randn({2, 3, 4}, gen, DType::Float64).requires_grad_();
  for (Activation act : kActivations) {
    INFO("activation " << nn::activation_name(act));
    CHECK_GRADCHECK(
        [act](const std::vector<Tensor>& in) {
          return mlp(in[0], in[1], in[2], act, in[3], in[4], in[5]);
        },
        {x, W_in, b_in, W_out, b_out, r});
    CHECK_GRADCHECK(
        [act](const std::vector<Tensor>& in) {
          return mlp(in[0], in[1], Tensor(), act, in[2], Tensor());
        },
        {x, W_in, W_out});
    // Each input alone needing a gradient: backward computes only what that one needs.
    for (int only = 0; only < 6; ++only) {
      INFO("only input " << only << " (x, W_in, b_in, W_out, b_out, residual) requires grad");
      std::vector<Tensor> in = {x.detach(), W_in.detach(), b_in.detach(),
                                W_out.detach(), b_out.detach(), r.detach()};
      in[static_cast<size_t>(only)].requires_grad_();
      CHECK_GRADCHECK(
          [act](const std::vector<Tensor>& v) {
            return mlp(v[0], v[1], v[2], act, v[3], v[4], v[5]);
          },
          in);
    }
  }
  // A residual block h + mlp(h) with h the output of an op: the skip's gradient goes into the
  // dx product.
  const Tensor h = randn({3, 4}, gen, DType::Float64).requires_grad_();
  const Tensor W1 = randn({4, 6}, gen, DType::Float64).requires_grad_();
  const Tensor W2 = randn({6, 4}, gen, DType::Float64).requires_grad_();
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        const Tensor x = in[0] * 1.0;
        return mlp(x, in[1], Tensor(), Activation::Relu, in[2], Tensor(), x) * x;
      },
      {h, W1, W2});
}

// Against two linear ops, float32 and float64, every activation: the output and every gradient
// to the bit. Zeros in the hidden layer's pre-activation (the kink) come from integer weights.
// Three shapes of block: a plain MLP, h + mlp(h) with h feeding nothing else, and with h also
// read by another op (whose gradient autograd has already sent when the MLP's backward runs).
TEST_CASE("mlp: equals two linear ops to the bit, residual blocks included", "[mlp]") {
  Generator gen(82);
  for (DType dtype : {DType::Float32, DType::Float64})
    for (Activation act : kActivations)
      for (int block = 0; block < 3; ++block) {
        INFO(dtype_name(dtype) << ", activation " << nn::activation_name(act) << ", block "
                               << block);
        // Integer inputs and first-layer weights: many hidden units exactly 0.
        const Tensor x0 = integers({5, 7, 6}, 2, gen, dtype);
        const Tensor W1 = integers({6, 13}, 2, gen, dtype), b1 = integers({13}, 2, gen, dtype);
        const Tensor W2 = randn({13, 6}, gen, dtype), b2 = randn({6}, gen, dtype);
        const Tensor weights = randn({5, 7, 6}, gen, dtype);
        std::vector<std::vector<double>> results[2];
        for (int fused = 0; fused < 2; ++fused) {
          Tensor leaf = x0.detach().requires_grad_(), w1 = W1.detach().requires_grad_();
          Tensor c1 = b1.detach().requires_grad_(), w2 = W2.detach().requires_grad_();
          Tensor c2 = b2.detach().requires_grad_();
          const Tensor x = leaf * 0.5;
          const Tensor residual = block == 0 ? Tensor() : x;
          const auto f = fused ? mlp : composed;
          Tensor y = f(x, w1, c1, act, w2, c2, residual);
          if (block == 2) y = y * x;  // x's other consumer
          sum(y * weights).backward();
          for (const Tensor& t : {y, leaf.grad(), w1.grad(), c1.grad(), w2.grad(), c2.grad()})
            results[fused].push_back(t.to_vector<double>());
        }
        for (size_t i = 0; i < results[0].size(); ++i) {
          INFO("output " << i << " (y, dx, dW_in, db_in, dW_out, db_out)");
          CHECK(results[1][i] == results[0][i]);
        }
      }
}

TEST_CASE("mlp: a residual that is not x gets its own gradient", "[mlp]") {
  Generator gen(83);
  const Tensor x = randn({4, 3}, gen, DType::Float64).requires_grad_();
  const Tensor W1 = randn({3, 5}, gen, DType::Float64).requires_grad_();
  const Tensor W2 = randn({5, 2}, gen, DType::Float64).requires_grad_();
  const Tensor r = randn({2, 4}, gen, DType::Float64).requires_grad_();
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return mlp(in[0], in[1], Tensor(), Activation::Relu, in[2], Tensor(), in[3].t());
      },
      {x, W1, W2, r});
}

TEST_CASE("mlp: shape and dtype errors name the operands", "[mlp]") {
  const Tensor x = zeros({4, 5}), W1 = zeros({5, 3}), W2 = zeros({3, 2});
  REQUIRE_TG_ERROR(mlp(zeros({4, 6}), W1, Tensor(), Activation::Relu, W2, Tensor()),
                   "mlp: x [4, 6] must be [..., 5] for W_in [5, 3]");
  REQUIRE_TG_ERROR(mlp(x, W1, Tensor(), Activation::Relu, zeros({4, 2}), Tensor()),
                   "mlp: W_in [5, 3] and W_out [4, 2] must be [in, hidden] and [hidden, out]");
  REQUIRE_TG_ERROR(mlp(x, W1, zeros({4}), Activation::Relu, W2, Tensor()),
                   "mlp: b_in must be [3], got [4]");
  REQUIRE_TG_ERROR(mlp(x, W1, Tensor(), Activation::Relu, W2, zeros({3})),
                   "mlp: b_out must be [2], got [3]");
  REQUIRE_TG_ERROR(mlp(x, W1, Tensor(), Activation::Relu, W2, Tensor(), zeros({4, 3})),
                   "mlp: residual [4, 3] must have the output's shape [4, 2]");
  REQUIRE_THROWS_AS(mlp(x, zeros({5, 3}, DType::Float64), Tensor(), Activation::Relu, W2,
                        Tensor()),
                    tg::Error);
}

TEST_CASE("mlp: empty batches, forward and backward", "[mlp]") {
  Tensor x = zeros({0, 5}).requires_grad_();
  Tensor W1 = ones({5, 3}).requires_grad_(), W2 = ones({3, 2}).requires_grad_();
  Tensor b1 = ones({3}).requires_grad_(), b2 = ones({2}).requires_grad_();
  const Tensor y = mlp(x, W1, b1, Activation::Relu, W2, b2);
  CHECK(y.shape() == Shape{0, 2});
  sum(y).backward();
  CHECK(x.grad().shape() == Shape{0, 5});
  CHECK(W1.grad().to_vector<float>() == std::vector<float>(15, 0.0f));
  CHECK(b2.grad().to_vector<float>() == std::vector<float>(2, 0.0f));
}
