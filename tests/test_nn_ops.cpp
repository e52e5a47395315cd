// Neural-network op tests: softmax and log-softmax, cross-entropy (softmax and StableMax),
// embedding, one-hot, layer norm, dropout, cat, and the backward of every view op (reshape,
// transpose, permute, slice, select, expand, squeeze/unsqueeze, dtype conversion, clone,
// contiguous): values by hand, host references and float64 gradchecks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "op_test_util.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::check_tensor;
using tg::testing::relative_error;
using tg::testing::strided_values;

namespace {

// softmax (or log-softmax) of row-major `values` of `shape` along `axis`, in double.
std::vector<double> naive_softmax(const std::vector<double>& values, const Shape& shape, int axis,
                                  bool log) {
  const Strides strides = contiguous_strides(shape);
  std::vector<double> out(values.size());
  const int64_t n = shape[axis], step = strides[axis];
  for (int64_t flat = 0; flat < static_cast<int64_t>(values.size()); ++flat) {
    if ((flat / step) % n != 0) continue;  // visit each line once, from its first element
    double peak = -INFINITY, total = 0;
    for (int64_t i = 0; i < n; ++i) peak = std::max(peak, values[flat + i * step]);
    for (int64_t i = 0; i < n; ++i) total += std::exp(values[flat + i * step] - peak);
    for (int64_t i = 0; i < n; ++i) {
      const double shifted = values[flat + i * step] - peak;
      out[flat + i * step] = log ? shifted - std::log(total) : std::exp(shifted) / total;
    }
  }
  return out;
}

// Layer norm of each row of `values` (rows of length d), in double.
std::vector<double> naive_layer_norm(const std::vector<double>& values, int64_t d,
                                     const std::vector<double>& weight,
                                     const std::vector<double>& bias, double eps) {
  std::vector<double> out(values.size());
  for (size_t r = 0; r * d < values.size(); ++r) {
    double mu = 0, var = 0;
    for (int64_t i = 0; i < d; ++i) mu += values[r * d + i];
    mu /= d;
    for (int64_t i = 0; i < d; ++i) var += (values[r * d + i] - mu) * (values[r * d + i] - mu);
    var /= d;
    for (int64_t i = 0; i < d; ++i) {
      double y = (values[r * d + i] - mu) / std::sqrt(var + eps);
      if (!weight.empty()) y *= weight[i];
      if (!bias.empty()) y += bias[i];
      out[r * d + i] = y;
    }
  }
  return out;
}

Tensor leaf64(const Shape& shape, Generator& gen) {
  return randn(shape, gen, DType::Float64).requires_grad_();
}

}  // namespace

// --- softmax and log-softmax --------------------------------------------------------------------

TEST_CASE("nn_ops: softmax and log_softmax of [1,2,3] by hand", "[nn_ops]") {
  const std::vector<double> sm = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
  const std::vector<double> lsm = {-2.4076059644443806, -1.4076059644443806, -0.4076059644443806};
  check_tensor(softmax(from_vector<double>({1, 2, 3})), {3}, sm, 1e-15);
  check_tensor(log_softmax(from_vector<double>({1, 2, 3})), {3}, lsm, 1e-15);
  check_tensor(softmax(from_vector<float>({1, 2, 3})), {3}, sm, 1e-6);
  check_tensor(log_softmax(from_vector<float>({1, 2, 3})), {3}, lsm, 1e-6);
  // Shift invariance: huge inputs do not overflow.
  check_tensor(softmax(from_vector<float>({1000, 1001, 1002})), {3}, sm, 1e-6);
  check_tensor(log_softmax(from_vector<float>({1000, 1001, 1002})), {3}, lsm, 1e-5);
  check_tensor(softmax(from_vector<float>({-1000, 0, 1000})), {3}, {0, 0, 1}, 1e-6);
  check_tensor(log_softmax(from_vector<double>({-1000, 0, 1000})), {3}, {-2000, -1000, 0}, 1e-12);
  check_tensor(softmax(from_vector<double>({-1000, -1000})), {2}, {0.5, 0.5}, 1e-15);
}

TEST_CASE("nn_ops: softmax rows sum to 1 along last and non-last axes", "[nn_ops]") {
  Generator gen(51);
  Tensor x = scale(randn({4, 5, 3}, gen), 3.0);
  for (int64_t axis : {0, 1, 2, -1, -2}) {
    INFO("axis " << axis);
    Tensor s = softmax(x, axis);
    REQUIRE(s.shape() == x.shape());
    check_tensor(sum(s, {axis}), sum(s, {axis}).shape(),
                 std::vector<double>(static_cast<size_t>(60 / x.size(axis)), 1.0), 1e-6);
    const int a = axis < 0 ? static_cast<int>(axis + 3) : static_cast<int>(axis);
    CHECK(relative_error(s.to_vector<double>(),
                         naive_softmax(strided_values(x), x.shape(), a, false)) < 1e-6);
    CHECK(relative_error(log_softmax(x, axis).to_vector<double>(),
                         naive_softmax(strided_values(x), x.shape(), a, true)) < 1e-6);
  }
  // Along axis 0 of a matrix is along the last axis of its transpose; transposed inputs work.
  Tensor m = randn({3, 4}, gen, DType::Float64);
  CHECK(relative_error(softmax(m, 0).to_vector<double>(),
                       softmax(m.t(), -1).t().contiguous().to_vector<double>()) < 1e-15);
  CHECK(relative_error(log_softmax(m.t(), 0).to_vector<double>(),
                       naive_softmax(strided_values(m.t()), {4, 3}, 0, true)) < 1e-14);
  CHECK_THROWS_AS(softmax(m, 2), Error);
  CHECK_THROWS_AS(softmax(from_vector<int64_t>({1, 2}), 0), Error);
}

TEST_CASE("nn_ops: softmax after a causal -inf mask gives zeros, not NaN", "[nn_ops]") {
  Tensor positions = arange(4);
  Tensor mask = gt(positions.unsqueeze(0), positions.unsqueeze(1));
  Tensor scores = zeros({2, 4, 4});
  Tensor p = softmax(masked_fill(scores, mask, -INFINITY), -1);
  const std::vector<float> v = p.to_vector<float>();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        INFO("n " << n << " i " << i << " j " << j);
        const float expected = j > i ? 0.0f : 1.0f / static_cast<float>(i + 1);
        CHECK(v[(n * 4 + i) * 4 + j] == Approx(expected).margin(1e-7));
      }
}

TEST_CASE("nn_ops: gradcheck of softmax and log_softmax along both axes", "[nn_ops]") {
  Generator gen(52);
  Tensor x = leaf64({3, 5}, gen);
  for (int64_t axis : {-1, 0}) {
    INFO("axis " << axis);
    CHECK_GRADCHECK([axis](const std::vector<Tensor>& in) { return softmax(in[0], axis); }, {x});
    CHECK_GRADCHECK([axis](const std::vector<Tensor>& in) { return log_softmax(in[0], axis); },
                    {x});
  }
  Tensor y = leaf64({2, 3, 4}, gen);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return softmax(in[0], 1); }, {y});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return log_softmax(in[0], 1); }, {y});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return softmax(in[0].t(), -1); }, {x});
}

// --- cross-entropy -----------------------------------------------------------------------------

TEST_CASE("nn_ops: cross_entropy by hand for Mean, Sum and None", "[nn_ops]") {
  // Row 0: logsumexp(1,2,3) = 3.40760596...; row 1 is row 0 shifted by -2 with target 1 (= 0).
  const double l0 = 0.4076059644443806, l1 = 1.4076059644443806;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    const double tol = dtype == DType::Float32 ? 1e-6 : 1e-14;
    Tensor logits = from_vector<double>({1, 2, 3, 1, 0, -1}, {2, 3}).to(dtype);
    Tensor targets = from_vector<int64_t>({2, 1});
    Tensor none = cross_entropy(logits, targets, Reduction::None);
    CHECK(none.dtype() == dtype);
    check_tensor(none, {2}, {l0, l1}, tol);
    check_tensor(cross_entropy(logits, targets, Reduction::Sum), {}, {l0 + l1}, tol);
    check_tensor(cross_entropy(logits, targets, Reduction::Mean), {}, {(l0 + l1) / 2}, tol);
    check_tensor(cross_entropy(logits, targets), {}, {(l0 + l1) / 2}, tol);
  }
}

TEST_CASE("nn_ops: cross_entropy is stable for logits of +-1000", "[nn_ops]") {
  // Row 0: the target holds the max, loss ~ 0. Row 1: log(1 + e^-1) + 1. Row 2: 2000.
  const double r1 = 1.3132616875182228;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    Tensor logits =
        from_vector<double>({1000, -1000, 0, -1000, 1000, 999, 1000, -1000, 0}, {3, 3}).to(dtype);
    Tensor targets = from_vector<int64_t>({0, 2, 1});
    Tensor loss = cross_entropy(logits, targets, Reduction::None);
    check_tensor(loss, {3}, {0, r1, 2000}, dtype == DType::Float32 ? 1e-4 : 1e-12);
    Tensor x = logits.detach().requires_grad_();
    cross_entropy(x, targets, Reduction::Sum).backward();
    for (double g : x.grad().to_vector<double>()) CHECK(std::isfinite(g));
    // Row 0's gradient is ~0 (softmax ~ onehot); row 2's is ~(+1 at class 0, -1 at class 1).
    const std::vector<double> g = x.grad().to_vector<double>();
    CHECK(g[0] == Approx(0).margin(1e-6));
    CHECK(g[6] == Approx(1).margin(1e-6));
    CHECK(g[7] == Approx(-1).margin(1e-6));
  }
}

TEST_CASE("nn_ops: cross_entropy's float32 gradient keeps full precision at large logits",
          "[nn_ops]") {
  // logits [1000, 1001], target 1: softmax = [1/(1+e), e/(1+e)] = [0.268941.., 0.731058..]. A
  // log-sum-exp rounded to float32 (~1001.3133 has an ulp of 6e-5) would shift both by ~1e-5.
  Tensor x = from_vector<float>({1000, 1001}, {1, 2}).requires_grad_();
  cross_entropy(x, from_vector<int64_t>({1}), Reduction::Sum).backward();
  const std::vector<float> g = x.grad().to_vector<float>();
  const double p0 = 1.0 / (1.0 + std::exp(1.0));
  CHECK(g[0] == Approx(p0).margin(1e-7));
  CHECK(g[1] == Approx(-p0).margin(1e-7));
  CHECK(std::abs(double(g[0]) + double(g[1])) < 1e-7);
}

TEST_CASE("nn_ops: cross_entropy's gradient is (softmax - onehot) / N", "[nn_ops]") {
  Generator gen(53);
  const int64_t n = 4, c = 5;
  Tensor logits = randn({n, c}, gen, DType::Float64).requires_grad_();
  Tensor targets = from_vector<int64_t>({4, 0, 2, 2});
  cross_entropy(logits, targets).backward();
  const std::vector<double> x = logits.to_vector<double>();
  std::vector<double> expected;
  for (int64_t r = 0; r < n; ++r) {
    double total = 0;
    for (int64_t k = 0; k < c; ++k) total += std::exp(x[r * c + k]);
    for (int64_t k = 0; k < c; ++k)
      expected.push_back((std::exp(x[r * c + k]) / total - (k == targets.to_vector<int64_t>()[r]))
                         / n);
  }
  check_tensor(logits.grad(), {n, c}, expected, 1e-14);

  // Sum: no 1/N; None with an upstream gradient scales each row.
  Tensor l2 = logits.detach().requires_grad_();
  cross_entropy(l2, targets, Reduction::None).backward(from_vector<double>({1, 0, 2, -1}));
  const std::vector<double> g = l2.grad().to_vector<double>();
  const std::vector<double> row_scale = {1, 0, 2, -1};
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < c; ++k)
      CHECK(g[r * c + k] == Approx(expected[r * c + k] * n * row_scale[r]).margin(1e-14));
}

TEST_CASE("nn_ops: cross_entropy rejects bad targets and shapes", "[nn_ops]") {
  Tensor logits = zeros({2, 3});
  CHECK_THROWS_AS(cross_entropy(logits, from_vector<int64_t>({0, 3})), Error);
  CHECK_THROWS_AS(cross_entropy(logits, from_vector<int64_t>({0, -1})), Error);
  CHECK_THROWS_AS(cross_entropy(logits, from_vector<int64_t>({0})), Error);
  CHECK_THROWS_AS(cross_entropy(logits, from_vector<float>({0, 1})), Error);
  CHECK_THROWS_AS(cross_entropy(zeros({2, 3, 1}), from_vector<int64_t>({0, 1})), Error);
}

TEST_CASE("nn_ops: gradcheck of cross_entropy for every reduction", "[nn_ops]") {
  Generator gen(54);
  Tensor logits = leaf64({5, 7}, gen);
  Tensor targets = from_vector<int64_t>({6, 0, 3, 3, 1});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << static_cast<int>(r));
    CHECK_GRADCHECK(
        [r](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], r); },
        {logits, targets});
  }
  // Non-contiguous logits.
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return cross_entropy(in[0].t(), in[1], Reduction::Sum); },
      {leaf64({7, 5}, gen), targets});
}

// --- StableMax cross-entropy ---------------------------------------------------------------------

TEST_CASE("nn_ops: stablemax_cross_entropy equals -log(s(x_t) / sum s(x)), float32 and float64",
          "[nn_ops]") {
  // s(x) = x + 1 for x >= 0, 1 / (1 - x) for x < 0 (Prieto et al. 2025), straight from the formula.
  auto s = [](double x) { return x >= 0 ? x + 1 : 1 / (1 - x); };
  Generator gen(61);
  const int64_t n = 9, c = 13;
  std::vector<double> x = (randn({n, c}, gen, DType::Float64) * 4.0).to_vector<double>();
  x[0] = 0;  // the joint of the two branches
  x[1] = -300;
  x[2] = 250;
  const std::vector<int64_t> t = {0, 12, 5, 5, 1, 7, 2, 11, 3};
  std::vector<double> rows(n);
  for (int64_t r = 0; r < n; ++r) {
    double total = 0;
    for (int64_t j = 0; j < c; ++j) total += s(x[r * c + j]);
    rows[r] = -std::log(s(x[r * c + t[r]]) / total);
  }
  double sum_rows = 0;
  for (const double v : rows) sum_rows += v;
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    const double tol = dtype == DType::Float32 ? 1e-5 : 1e-12;
    const Tensor logits = from_vector<double>(x, {n, c}).to(dtype);
    const Tensor targets = from_vector<int64_t>(t);
    const Tensor none = stablemax_cross_entropy(logits, targets, Reduction::None);
    CHECK(none.dtype() == dtype);
    check_tensor(none, {n}, rows, tol);
    check_tensor(stablemax_cross_entropy(logits, targets, Reduction::Sum), {}, {sum_rows}, tol);
    check_tensor(stablemax_cross_entropy(logits, targets), {}, {sum_rows / n}, tol);
  }
  // It differs from softmax cross-entropy (the check above could not pass with cross_entropy).
  const Tensor logits = from_vector<double>(x, {n, c});
  CHECK(std::abs(stablemax_cross_entropy(logits, from_vector<int64_t>(t)).item() -
                 cross_entropy(logits, from_vector<int64_t>(t)).item()) > 0.1);
  const Tensor out_of_range = from_vector<int64_t>({0, 13, 0, 0, 0, 0, 0, 0, 0});
  CHECK_THROWS_AS(stablemax_cross_entropy(logits, out_of_range), Error);
  CHECK_THROWS_AS(stablemax_cross_entropy(zeros({2, 3, 1}), from_vector<int64_t>({0, 1})), Error);
}

TEST_CASE("nn_ops: gradcheck of stablemax_cross_entropy for every reduction, including x = 0",
          "[nn_ops]") {
  Generator gen(62);
  Tensor logits = (randn({5, 7}, gen, DType::Float64) * 3.0).detach();
  std::vector<double> v = logits.to_vector<double>();
  v[3] = 0;   // s is C1 at 0: the derivative there is 1 from both sides
  v[10] = 0;  // and a target's own logit at 0
  logits = from_vector<double>(v, {5, 7}).requires_grad_();
  const Tensor targets = from_vector<int64_t>({6, 3, 3, 0, 1});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << static_cast<int>(r));
    CHECK_GRADCHECK(
        [r](const std::vector<Tensor>& in) { return stablemax_cross_entropy(in[0], in[1], r); },
        {logits, targets});
  }
  // At x = 0 exactly: d/dx of -log StableMax_t for a non-target x_j is s'(0) / sum s = 1 / sum s.
  Tensor row = from_vector<double>({0, 1, -1}, {1, 3}).requires_grad_();
  stablemax_cross_entropy(row, from_vector<int64_t>({1})).backward();
  const double total = 1 + 2 + 0.5;
  check_tensor(row.grad(), {1, 3}, {1 / total, 1 / total - 1 / 2.0, 0.25 / total}, 1e-12);
}

// --- embedding and one-hot -----------------------------------------------------------------------

TEST_CASE("nn_ops: embedding gathers rows for an index of any shape", "[nn_ops]") {
  Tensor table = arange(0, 40, 1, DType::Float32).reshape({10, 4});  // row r = 4r .. 4r + 3
  Tensor index = from_vector<int64_t>({1, 2, 1, 9, 1, 0}, {2, 3});
  Tensor out = embedding(table, index);
  REQUIRE(out.shape() == Shape{2, 3, 4});
  std::vector<double> expected;
  for (int64_t r : {1, 2, 1, 9, 1, 0})
    for (int64_t i = 0; i < 4; ++i) expected.push_back(4.0 * r + i);
  check_tensor(out, {2, 3, 4}, expected, 0);
  // A 0-d index gives one row; a 1-D table gives scalars.
  check_tensor(embedding(table, scalar(7, DType::Int64)), {4}, {28, 29, 30, 31}, 0);
  check_tensor(embedding(from_vector<double>({5, 6, 7}), from_vector<int64_t>({2, 0, 2})), {3},
               {7, 5, 7}, 0);
  // A non-contiguous table.
  check_tensor(embedding(table.slice(1, 1, 4, 2), from_vector<int64_t>({3})), {1, 2}, {13, 15}, 0);
  CHECK_THROWS_AS(embedding(table, from_vector<int64_t>({10})), Error);
  CHECK_THROWS_AS(embedding(table, from_vector<int64_t>({-1})), Error);
  CHECK_THROWS_AS(embedding(table, from_vector<float>({1})), Error);
}

TEST_CASE("nn_ops: embedding's backward accumulates repeated indices", "[nn_ops]") {
  Tensor table = zeros({10, 4}, DType::Float64).requires_grad_();
  Tensor index = from_vector<int64_t>({1, 2, 1, 9, 1, 0}, {2, 3});
  Tensor out = embedding(table, index);
  // Upstream gradient: position p = (i*3 + j) holds 4p .. 4p + 3.
  out.backward(arange(0, 24, 1, DType::Float64).reshape({2, 3, 4}));
  std::vector<double> expected(40, 0.0);
  auto set_row = [&](int r, std::vector<double> v) {
    for (int i = 0; i < 4; ++i) expected[r * 4 + i] = v[i];
  };
  set_row(1, {0 + 8 + 16, 1 + 9 + 17, 2 + 10 + 18, 3 + 11 + 19});  // positions 0, 2, 4
  set_row(2, {4, 5, 6, 7});                                        // position 1
  set_row(9, {12, 13, 14, 15});                                    // position 3
  set_row(0, {20, 21, 22, 23});                                    // position 5
  check_tensor(table.grad(), {10, 4}, expected, 0);
}

TEST_CASE("nn_ops: gradcheck of embedding (table gradient)", "[nn_ops]") {
  Generator gen(55);
  Tensor table = leaf64({6, 3}, gen);
  Tensor index = from_vector<int64_t>({1, 5, 1, 0, 1, 4}, {2, 3});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return embedding(in[0], in[1]); },
                  {table, index});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return embedding(in[0], in[1]) * embedding(in[0], in[1]); },
      {table, from_vector<int64_t>({2, 2, 3})});
}

TEST_CASE("nn_ops: embed_positions is embedding plus the first T rows of W_pos", "[nn_ops]") {
  Generator gen(56);
  Tensor W_E = leaf64({6, 3}, gen), W_pos = leaf64({4, 3}, gen);
  Tensor tokens = from_vector<int64_t>({1, 5, 1, 0, 1, 4}, {2, 3});
  Tensor fused = embed_positions(W_E, W_pos, tokens);
  Tensor composed = embedding(W_E, tokens) + W_pos.slice(0, 0, 3).unsqueeze(0);
  check_tensor(fused, {2, 3, 3}, composed.to_vector<double>(), 0);
  // Backward against the composition's, with a random upstream gradient.
  Tensor dy = randn({2, 3, 3}, gen, DType::Float64);
  fused.backward(dy);
  const Tensor dW_E = W_E.grad().clone(), dW_pos = W_pos.grad().clone();
  W_E.zero_grad();
  W_pos.zero_grad();
  composed.backward(dy);
  check_tensor(dW_E, {6, 3}, W_E.grad().to_vector<double>(), 1e-15);
  check_tensor(dW_pos, {4, 3}, W_pos.grad().to_vector<double>(), 1e-15);
  // Empty batch and T = 0.
  CHECK(embed_positions(W_E, W_pos, zeros({0, 2}, DType::Int64)).shape() == Shape{0, 2, 3});
  CHECK(embed_positions(W_E, W_pos, zeros({2, 0}, DType::Int64)).shape() == Shape{2, 0, 3});
  // Bad tokens, too long a sequence, mismatched widths, integer tables.
  CHECK_THROWS_AS(embed_positions(W_E, W_pos, from_vector<int64_t>({0, 6}, {1, 2})), Error);
  CHECK_THROWS_AS(embed_positions(W_E, W_pos, from_vector<int64_t>({0, -1}, {1, 2})), Error);
  CHECK_THROWS_AS(embed_positions(W_E, W_pos, zeros({1, 5}, DType::Int64)), Error);
  CHECK_THROWS_AS(embed_positions(W_E, W_pos, from_vector<float>({0, 1}, {1, 2})), Error);
  CHECK_THROWS_AS(embed_positions(W_E, zeros({4, 2}, DType::Float64), tokens), Error);
  CHECK_THROWS_AS(embed_positions(zeros({6, 3}, DType::Int64), zeros({4, 3}, DType::Int64), tokens),
                  Error);
}

TEST_CASE("nn_ops: gradcheck of embed_positions (both tables)", "[nn_ops]") {
  Generator gen(57);
  Tensor W_E = leaf64({5, 4}, gen), W_pos = leaf64({3, 4}, gen);
  auto f = [](const std::vector<Tensor>& in) { return embed_positions(in[0], in[1], in[2]); };
  CHECK_GRADCHECK(f, {W_E, W_pos, from_vector<int64_t>({1, 4, 1, 0, 1, 1}, {3, 2})});
  CHECK_GRADCHECK(f, {W_E, W_pos, from_vector<int64_t>({2, 2, 3}, {1, 3})});  // T = P
  // Non-contiguous tables.
  CHECK_GRADCHECK(f, {leaf64({4, 5}, gen).t(), leaf64({4, 3}, gen).t(),
                      from_vector<int64_t>({4, 0, 3}, {3, 1})});
}

TEST_CASE("nn_ops: cross_entropy's one-pass gradient equals the two-pass route's", "[nn_ops]") {
  // A mean or sum computes dlogits in the forward pass (Backend::cross_entropy_with_grad); the
  // per-row route (None, then the same reduction by hand) must give the same loss and gradient.
  Generator gen(58);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
      INFO(dtype_name(dtype) << " reduction " << static_cast<int>(r));
      Tensor logits = randn({9, 7}, gen, dtype).requires_grad_();
      Tensor targets = from_vector<int64_t>({6, 0, 3, 3, 1, 2, 5, 4, 0});
      Tensor fused = cross_entropy(logits, targets, r);
      fused.backward();
      const Tensor g_fused = logits.grad().clone();
      logits.zero_grad();
      Tensor rows = cross_entropy(logits, targets, Reduction::None);
      Tensor composed = r == Reduction::Mean ? mean(rows) : sum(rows);
      composed.backward();
      CHECK(fused.item() == composed.item());
      check_tensor(g_fused, {9, 7}, logits.grad().to_vector<double>(), 0);
      // An upstream gradient other than 1 scales it.
      logits.zero_grad();
      (cross_entropy(logits, targets, r) * 3.0).backward();
      check_tensor(logits.grad(), {9, 7}, (g_fused * 3.0).to_vector<double>(),
                   dtype == DType::Float32 ? 1e-6 : 1e-15);
    }
  }
}

TEST_CASE("nn_ops: one_hot", "[nn_ops]") {
  Tensor index = from_vector<int64_t>({0, 3, 1, 2, 2, 0}, {2, 3});
  Tensor oh = one_hot(index, 4);
  CHECK(oh.dtype() == DType::Float32);
  check_tensor(oh, {2, 3, 4},
               {1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0}, 0);
  Tensor oi = one_hot(from_vector<int64_t>({2, 0}), 3, DType::Int64);
  CHECK(oi.dtype() == DType::Int64);
  CHECK(oi.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1, 1, 0, 0});
  CHECK(one_hot(from_vector<int64_t>({1}), 2, DType::Float64).dtype() == DType::Float64);
  check_tensor(one_hot(scalar(1, DType::Int64), 3), {3}, {0, 1, 0}, 0);
  // A strided index.
  check_tensor(one_hot(index.slice(1, 0, 3, 2), 4), {2, 2, 4},
               {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0}, 0);
  CHECK_THROWS_AS(one_hot(from_vector<int64_t>({4}), 4), Error);
  CHECK_THROWS_AS(one_hot(from_vector<int64_t>({-1}), 4), Error);
  CHECK_THROWS_AS(one_hot(from_vector<int64_t>({0}), 0), Error);
  CHECK_THROWS_AS(one_hot(from_vector<float>({0}), 2), Error);
}

// --- layer norm ---------------------------------------------------------------------------------

TEST_CASE("nn_ops: layer_norm without weight and bias gives rows of mean 0, variance 1",
          "[nn_ops]") {
  Generator gen(56);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    Tensor x = normal({2, 3, 7}, 3.0, 2.5, gen, dtype);
    Tensor y = layer_norm(x, Tensor(), Tensor(), 1e-5);
    REQUIRE(y.shape() == x.shape());
    CHECK(y.dtype() == dtype);
    const double tol = dtype == DType::Float32 ? 1e-5 : 1e-12;
    CHECK(relative_error(y.to_vector<double>(),
                         naive_layer_norm(strided_values(x), 7, {}, {}, 1e-5)) < tol);
    const std::vector<double> v = y.to_vector<double>();
    for (int r = 0; r < 6; ++r) {
      double mu = 0, var = 0;
      for (int i = 0; i < 7; ++i) mu += v[r * 7 + i] / 7;
      for (int i = 0; i < 7; ++i) var += (v[r * 7 + i] - mu) * (v[r * 7 + i] - mu) / 7;
      CHECK(mu == Approx(0).margin(1e-6));
      CHECK(var == Approx(1).epsilon(1e-4));  // var / (var + eps), eps = 1e-5
    }
  }
}

TEST_CASE("nn_ops: layer_norm with weight and bias, eps, and non-contiguous inputs", "[nn_ops]") {
  Generator gen(57);
  Tensor x = randn({4, 5}, gen, DType::Float64);
  Tensor w = randn({5}, gen, DType::Float64), b = randn({5}, gen, DType::Float64);
  const std::vector<double> xv = strided_values(x), wv = w.to_vector<double>(),
                            bv = b.to_vector<double>();
  CHECK(relative_error(layer_norm(x, w, b).to_vector<double>(),
                       naive_layer_norm(xv, 5, wv, bv, 1e-5)) < 1e-13);
  CHECK(relative_error(layer_norm(x, w, Tensor()).to_vector<double>(),
                       naive_layer_norm(xv, 5, wv, {}, 1e-5)) < 1e-13);
  CHECK(relative_error(layer_norm(x, Tensor(), b).to_vector<double>(),
                       naive_layer_norm(xv, 5, {}, bv, 1e-5)) < 1e-13);
  // eps by hand: x = [1, -1] has mean 0 and variance 1, so y = x / sqrt(1 + eps).
  check_tensor(layer_norm(from_vector<double>({1, -1}), Tensor(), Tensor(), 1.0), {2},
               {1 / std::sqrt(2.0), -1 / std::sqrt(2.0)}, 1e-15);
  check_tensor(layer_norm(from_vector<double>({1, -1}), Tensor(), Tensor(), 0.0), {2}, {1, -1},
               1e-15);
  // A constant row has variance 0: eps keeps it finite (all zeros, then the bias).
  check_tensor(layer_norm(full({1, 3}, 4.0), Tensor(), from_vector<float>({1, 2, 3})), {1, 3},
               {1, 2, 3}, 1e-6);
  // A transposed input normalises its logical rows.
  Tensor xt = randn({5, 4}, gen, DType::Float64).t();
  CHECK(relative_error(layer_norm(xt, w, b).to_vector<double>(),
                       naive_layer_norm(strided_values(xt), 5, wv, bv, 1e-5)) < 1e-13);
  CHECK_THROWS_AS(layer_norm(x, randn({4}, gen, DType::Float64), Tensor()), Error);
  CHECK_THROWS_AS(layer_norm(x, ones({5}), Tensor()), Error);  // dtype mismatch
}

TEST_CASE("nn_ops: gradcheck of layer_norm (x, weight, bias)", "[nn_ops]") {
  Generator gen(58);
  Tensor x = leaf64({3, 7}, gen), w = leaf64({7}, gen), b = leaf64({7}, gen);
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 1e-5); },
      {x, w, b});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), Tensor(), 1e-5); },
      {x});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], Tensor(), 0.1); },
      {x, w});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), in[1], 1e-5); },
      {x, b});
  // Weight and bias only (x constant), and a 3-D non-contiguous input.
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 1e-5); },
      {randn({3, 7}, gen, DType::Float64), w, b});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return layer_norm(in[0].transpose(0, 2), in[1], in[2], 1e-5);
      },
      {leaf64({7, 2, 2}, gen), w, b});
}

// --- dropout ------------------------------------------------------------------------------------

TEST_CASE("nn_ops: dropout zeroes with probability p, scales the rest, gradient = mask",
          "[nn_ops]") {
  const double p = 0.3;
  Generator gen(59);
  // 5120 elements: above the size where the random fill is threaded.
  Tensor x = randn({80, 64}, gen).requires_grad_();
  Generator drop(123);
  Tensor y = dropout(x, p, true, drop);
  // The same generator state draws the same mask: dropout of ones is the mask itself.
  Generator again(123);
  Tensor mask = dropout(ones({80, 64}), p, true, again);
  const std::vector<float> m = mask.to_vector<float>(), xv = x.to_vector<float>(),
                           yv = y.to_vector<float>();
  int64_t zeros_seen = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    INFO("element " << i);
    const bool dropped = m[i] == 0.0f;
    zeros_seen += dropped;
    if (!dropped) CHECK(m[i] == Approx(1 / (1 - p)).epsilon(1e-6));
    CHECK(yv[i] == Approx(xv[i] * m[i]).epsilon(1e-6));
  }
  CHECK(zeros_seen > 0.25 * 5120);
  CHECK(zeros_seen < 0.35 * 5120);
  y.backward(ones({80, 64}));
  CHECK(x.grad().to_vector<float>() == m);
  // The generator moved on: the next draw is a different mask.
  CHECK(dropout(ones({80, 64}), p, true, drop).to_vector<float>() != m);
}

TEST_CASE("nn_ops: dropout is the identity when not training or p = 0", "[nn_ops]") {
  Generator gen(60);
  Tensor x = randn({3, 4}, gen);
  CHECK(dropout(x, 0.5, false, gen).to_vector<float>() == x.to_vector<float>());
  CHECK(dropout(x, 0.0, true, gen).to_vector<float>() == x.to_vector<float>());
  CHECK_THROWS_AS(dropout(x, 1.0, true, gen), Error);
  CHECK_THROWS_AS(dropout(x, -0.1, true, gen), Error);
}

TEST_CASE("nn_ops: gradcheck of dropout with a fixed generator", "[nn_ops]") {
  Generator gen(61);
  Tensor x = leaf64({3, 5}, gen);
  // Rebuild the generator inside f so that every call draws the same mask.
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        Generator g(77);
        return dropout(in[0], 0.4, true, g);
      },
      {x});
  // The mask is not all ones: the test would not notice a missing mask otherwise.
  Generator g(77);
  const std::vector<double> m = dropout(ones({3, 5}, DType::Float64), 0.4, true, g).to_vector<double>();
  CHECK(std::count(m.begin(), m.end(), 0.0) > 0);
  CHECK(std::count(m.begin(), m.end(), 0.0) < 15);
}

// --- threaded paths --------------------------------------------------------------------------

TEST_CASE("nn_ops: large inputs (threaded rows) match naive references, forward and backward",
          "[nn_ops]") {
  // 12001 rows of 3: enough lines that the kernels split them across threads.
  Generator gen(64);
  const int64_t rows = 12001, d = 3;
  Tensor x = randn({rows, d}, gen, DType::Float64).requires_grad_();
  Tensor dy = randn({rows, d}, gen, DType::Float64);
  const std::vector<double> xv = x.to_vector<double>(), dyv = dy.to_vector<double>();

  SECTION("softmax along the last and the first axis, with backward") {
    Tensor y = softmax(x, -1);
    const std::vector<double> ref = naive_softmax(xv, {rows, d}, 1, false);
    CHECK(relative_error(y.to_vector<double>(), ref) < 1e-14);
    y.backward(dy);
    std::vector<double> dx_ref(xv.size());
    for (int64_t r = 0; r < rows; ++r) {
      double dot = 0;
      for (int64_t i = 0; i < d; ++i) dot += dyv[r * d + i] * ref[r * d + i];
      for (int64_t i = 0; i < d; ++i) dx_ref[r * d + i] = ref[r * d + i] * (dyv[r * d + i] - dot);
    }
    CHECK(relative_error(x.grad().to_vector<double>(), dx_ref) < 1e-12);
    // Axis 0 of the transpose: 12001 lines of stride 1 inside [3, 12001].
    CHECK(relative_error(log_softmax(x.detach().t().contiguous(), 1).to_vector<double>(),
                         naive_softmax(strided_values(x.t()), {d, rows}, 1, true)) < 1e-14);
    CHECK(relative_error(softmax(x.detach().t().contiguous(), 0).to_vector<double>(),
                         naive_softmax(strided_values(x.t()), {d, rows}, 0, false)) < 1e-14);
  }
  SECTION("cross_entropy, with backward") {
    std::vector<int64_t> targets(rows);
    for (int64_t r = 0; r < rows; ++r) targets[r] = (r * 7) % d;
    Tensor loss = cross_entropy(x, from_vector(targets), Reduction::None);
    const std::vector<double> p = naive_softmax(xv, {rows, d}, 1, false);
    std::vector<double> loss_ref(rows), dx_ref(xv.size());
    for (int64_t r = 0; r < rows; ++r) {
      loss_ref[r] = -std::log(p[r * d + targets[r]]);
      for (int64_t i = 0; i < d; ++i)
        dx_ref[r * d + i] = (p[r * d + i] - (i == targets[r] ? 1.0 : 0.0)) * dyv[r * d];
    }
    CHECK(relative_error(loss.to_vector<double>(), loss_ref) < 1e-12);
    loss.backward(dy.select(1, 0));
    CHECK(relative_error(x.grad().to_vector<double>(), dx_ref) < 1e-12);
  }
  SECTION("layer_norm, with backward for x, weight and bias") {
    Tensor w = randn({d}, gen, DType::Float64).requires_grad_();
    Tensor b = randn({d}, gen, DType::Float64).requires_grad_();
    const std::vector<double> wv = w.to_vector<double>();
    Tensor y = layer_norm(x, w, b, 1e-5);
    CHECK(relative_error(y.to_vector<double>(),
                         naive_layer_norm(xv, d, wv, b.to_vector<double>(), 1e-5)) < 1e-12);
    y.backward(dy);
    std::vector<double> dx_ref(xv.size()), dw_ref(d, 0.0), db_ref(d, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      double mu = 0, var = 0;
      for (int64_t i = 0; i < d; ++i) mu += xv[r * d + i] / d;
      for (int64_t i = 0; i < d; ++i) var += (xv[r * d + i] - mu) * (xv[r * d + i] - mu) / d;
      const double rstd = 1 / std::sqrt(var + 1e-5);
      double mean_g = 0, mean_gx = 0;
      for (int64_t i = 0; i < d; ++i) {
        const double xhat = (xv[r * d + i] - mu) * rstd, g = dyv[r * d + i] * wv[i];
        mean_g += g / d;
        mean_gx += g * xhat / d;
        dw_ref[i] += dyv[r * d + i] * xhat;
        db_ref[i] += dyv[r * d + i];
      }
      for (int64_t i = 0; i < d; ++i) {
        const double xhat = (xv[r * d + i] - mu) * rstd, g = dyv[r * d + i] * wv[i];
        dx_ref[r * d + i] = rstd * (g - mean_g - xhat * mean_gx);
      }
    }
    CHECK(relative_error(x.grad().to_vector<double>(), dx_ref) < 1e-11);
    CHECK(relative_error(w.grad().to_vector<double>(), dw_ref) < 1e-11);
    CHECK(relative_error(b.grad().to_vector<double>(), db_ref) < 1e-11);
  }
  SECTION("embedding's backward with many repeated indices") {
    Tensor table = zeros({7, d}, DType::Float64).requires_grad_();
    std::vector<int64_t> index(50001);
    for (size_t i = 0; i < index.size(); ++i) index[i] = static_cast<int64_t>((i * 5) % 7);
    Tensor upstream = randn({50001, d}, gen, DType::Float64);
    embedding(table, from_vector(index)).backward(upstream);
    const std::vector<double> u = upstream.to_vector<double>();
    std::vector<double> ref(7 * d, 0.0);
    for (size_t i = 0; i < index.size(); ++i)
      for (int64_t c = 0; c < d; ++c) ref[index[i] * d + c] += u[i * d + c];
    CHECK(relative_error(table.grad().to_vector<double>(), ref) < 1e-13);
  }
  SECTION("embedding's forward gathers the right rows when threads split the index") {
    // The table above is zeros: its gather says nothing. A random one, and the gather by hand.
    const Tensor table = randn({7, d}, gen, DType::Float64);
    std::vector<int64_t> index(50001);
    for (size_t i = 0; i < index.size(); ++i) index[i] = static_cast<int64_t>((i * 5 + 3) % 7);
    const std::vector<double> t = table.to_vector<double>();
    std::vector<double> ref;
    ref.reserve(index.size() * d);
    for (const int64_t r : index)
      for (int64_t c = 0; c < d; ++c) ref.push_back(t[r * d + c]);
    CHECK(relative_error(embedding(table, from_vector(index)).to_vector<double>(), ref) == 0);
  }
}

// --- cat ----------------------------------------------------------------------------------------

TEST_CASE("nn_ops: cat along axis 0 and 1, and its backward", "[nn_ops]") {
  Tensor a = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor b = from_vector<double>({7, 8, 9}, {1, 3}).requires_grad_();
  Tensor c = from_vector<double>({10, 11, 12, 13}, {2, 2}).requires_grad_();
  Tensor rows = cat({a, b}, 0);
  check_tensor(rows, {3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, 0);
  Tensor cols = cat({a, c}, 1);
  check_tensor(cols, {2, 5}, {1, 2, 3, 10, 11, 4, 5, 6, 12, 13}, 0);
  check_tensor(cat({a, c}, -1), {2, 5}, {1, 2, 3, 10, 11, 4, 5, 6, 12, 13}, 0);

  rows.backward(arange(0, 9, 1, DType::Float64).reshape({3, 3}));
  check_tensor(a.grad(), {2, 3}, {0, 1, 2, 3, 4, 5}, 0);
  check_tensor(b.grad(), {1, 3}, {6, 7, 8}, 0);
  a.zero_grad();
  cols.backward(arange(0, 10, 1, DType::Float64).reshape({2, 5}));
  check_tensor(a.grad(), {2, 3}, {0, 1, 2, 5, 6, 7}, 0);
  check_tensor(c.grad(), {2, 2}, {3, 4, 8, 9}, 0);

  // Non-contiguous inputs, three of them, only some requiring grad.
  Tensor t = from_vector<float>({1, 2, 3, 4}, {2, 2}).t();  // [[1,3],[2,4]]
  check_tensor(cat({t, ones({1, 2}), t.slice(0, 1, 2)}, 0), {4, 2}, {1, 3, 2, 4, 1, 1, 2, 4}, 0);
  Tensor d = ones({2, 2}, DType::Float64).requires_grad_();
  cat({c.detach(), d, c.detach()}, 1).sum().backward();
  check_tensor(d.grad(), {2, 2}, {1, 1, 1, 1}, 0);
  CHECK_THROWS_AS(cat({a, c}, 0), Error);
  CHECK_THROWS_AS(cat({a, a.to(DType::Float32)}, 0), Error);
  CHECK_THROWS_AS(cat({}, 0), Error);
}

TEST_CASE("nn_ops: gradcheck of cat", "[nn_ops]") {
  Generator gen(62);
  Tensor a = leaf64({2, 3}, gen), b = leaf64({1, 3}, gen), c = leaf64({2, 2}, gen);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, 0); }, {a, b});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return cat({in[0], in[1], in[0]}, 1); },
                  {a, c});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return cat({in[0].t(), in[1]}, 0); },
                  {a, randn({2, 2}, gen, DType::Float64)});
}

// --- views: backward by hand and gradchecks --------------------------------------------------------

TEST_CASE("nn_ops: view ops' backward maps the gradient back, by hand", "[nn_ops]") {
  auto grad_of = [](const Shape& in_shape, auto&& view, const Tensor& upstream) {
    Tensor x = zeros(in_shape, DType::Float64).requires_grad_();
    view(x).backward(upstream);
    return x.grad();
  };
  auto iota = [](const Shape& s) { return arange(0, double(numel(s)), 1, DType::Float64).reshape(s); };

  SECTION("reshape and view keep the row-major order") {
    check_tensor(grad_of({2, 3}, [](const Tensor& x) { return x.reshape({3, 2}); }, iota({3, 2})),
                 {2, 3}, {0, 1, 2, 3, 4, 5}, 0);
    check_tensor(grad_of({2, 3}, [](const Tensor& x) { return x.view({-1}); }, iota({6})), {2, 3},
                 {0, 1, 2, 3, 4, 5}, 0);
    check_tensor(grad_of({2, 3}, [](const Tensor& x) { return x.t().reshape({6}); }, iota({6})),
                 {2, 3}, {0, 2, 4, 1, 3, 5}, 0);
  }
  SECTION("transpose and permute") {
    check_tensor(grad_of({2, 3}, [](const Tensor& x) { return x.t(); }, iota({3, 2})), {2, 3},
                 {0, 2, 4, 1, 3, 5}, 0);
    // y[k, i, j] = x[i, j, k]; x.grad[i, j, k] = g[k, i, j] = 6k + 3i + j.
    std::vector<double> expected;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k) expected.push_back(6 * k + 3 * i + j);
    check_tensor(grad_of({2, 3, 4}, [](const Tensor& x) { return x.permute({2, 0, 1}); },
                         iota({4, 2, 3})),
                 {2, 3, 4}, expected, 0);
  }
  SECTION("slice with a step and select") {
    check_tensor(grad_of({7}, [](const Tensor& x) { return x.slice(0, 1, 7, 2); },
                         from_vector<double>({10, 20, 30})),
                 {7}, {0, 10, 0, 20, 0, 30, 0}, 0);
    check_tensor(grad_of({3, 4}, [](const Tensor& x) { return x.select(1, -1); },
                         from_vector<double>({1, 2, 3})),
                 {3, 4}, {0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, 0);
    check_tensor(grad_of({3, 4}, [](const Tensor& x) { return x.select(0, 1); },
                         from_vector<double>({1, 2, 3, 4})),
                 {3, 4}, {0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0}, 0);
  }
  SECTION("expand sums over the broadcast axes") {
    check_tensor(grad_of({3, 1}, [](const Tensor& x) { return x.expand({3, 4}); }, iota({3, 4})),
                 {3, 1}, {6, 22, 38}, 0);
    check_tensor(grad_of({3}, [](const Tensor& x) { return x.expand({2, 3}); }, iota({2, 3})), {3},
                 {3, 5, 7}, 0);
  }
  SECTION("squeeze and unsqueeze") {
    check_tensor(grad_of({3, 1}, [](const Tensor& x) { return x.squeeze(1); },
                         from_vector<double>({1, 2, 3})),
                 {3, 1}, {1, 2, 3}, 0);
    check_tensor(grad_of({3}, [](const Tensor& x) { return x.unsqueeze(0); }, iota({1, 3})), {3},
                 {0, 1, 2}, 0);
  }
  SECTION("clone and contiguous pass the gradient through") {
    check_tensor(grad_of({2, 2}, [](const Tensor& x) { return x.clone(); }, iota({2, 2})), {2, 2},
                 {0, 1, 2, 3}, 0);
    check_tensor(grad_of({2, 3}, [](const Tensor& x) { return x.t().contiguous(); }, iota({3, 2})),
                 {2, 3}, {0, 2, 4, 1, 3, 5}, 0);
  }
  SECTION("to(dtype) converts the gradient back") {
    Tensor x = from_vector<float>({1, 2}).requires_grad_();
    Tensor y = x.to(DType::Float64);
    CHECK(y.dtype() == DType::Float64);
    (y * from_vector<double>({3, 4})).sum().backward();
    CHECK(x.grad().dtype() == DType::Float32);
    check_tensor(x.grad(), {2}, {3, 4}, 0);
    Tensor z = from_vector<double>({1, 2}).requires_grad_();
    (z.to(DType::Float32) * 5.0).sum().backward();
    CHECK(z.grad().dtype() == DType::Float64);
    check_tensor(z.grad(), {2}, {5, 5}, 0);
    // Converting to int64 leaves the graph.
    CHECK_FALSE(z.to(DType::Int64).requires_grad());
  }
}

TEST_CASE("nn_ops: gradcheck of every view op", "[nn_ops]") {
  Generator gen(63);
  Tensor x = leaf64({2, 3, 4}, gen);
  Tensor m = leaf64({3, 5}, gen);
  using Fn = std::function<Tensor(const Tensor&)>;
  const std::vector<std::pair<const char*, Fn>> views = {
      {"reshape", [](const Tensor& t) { return t.reshape({4, 6}); }},
      {"reshape -1", [](const Tensor& t) { return t.reshape({-1, 3}); }},
      {"view", [](const Tensor& t) { return t.view({6, 4}); }},
      {"flatten", [](const Tensor& t) { return t.flatten(); }},
      {"transpose", [](const Tensor& t) { return t.transpose(0, 2); }},
      {"permute", [](const Tensor& t) { return t.permute({1, 2, 0}); }},
      {"slice step", [](const Tensor& t) { return t.slice(2, 0, 4, 3); }},
      {"slice negative", [](const Tensor& t) { return t.slice(1, -2, 3); }},
      {"select", [](const Tensor& t) { return t.select(1, 2); }},
      {"expand", [](const Tensor& t) { return t.unsqueeze(1).expand({2, 3, 3, 4}); }},
      {"squeeze", [](const Tensor& t) { return t.slice(1, 1, 2).squeeze(1); }},
      {"unsqueeze", [](const Tensor& t) { return t.unsqueeze(-1); }},
      {"clone", [](const Tensor& t) { return t.clone(); }},
      {"contiguous", [](const Tensor& t) { return t.transpose(0, 1).contiguous(); }},
      {"reshape of a transpose", [](const Tensor& t) { return t.transpose(1, 2).reshape({8, 3}); }},
      {"chain", [](const Tensor& t) { return t.permute({2, 0, 1}).slice(0, 1, 4, 2).select(2, 0); }},
  };
  for (const auto& [name, view] : views) {
    INFO(name);
    // gradcheck compares the whole Jacobian, so a gradient sent to the wrong element shows.
    CHECK_GRADCHECK([&view](const std::vector<Tensor>& in) { return view(in[0]); }, {x});
  }
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].expand({2, 3, 5}); }, {m});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].t().reshape({5, 3}); }, {m});
  // Through float32 and back: exact for this linear function up to float32 rounding, so a wider
  // step and tolerance.
  GradcheckOptions loose;
  loose.eps = 1e-2;
  loose.atol = 1e-4;
  loose.rtol = 1e-3;
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return in[0].to(DType::Float32).to(DType::Float64) * 3.0; },
      {m}, loose);
}
