// Reduction tests: sum, mean, max and argmax by hand over single, several, all and negative axes
// with and without keepdim; ties (argmax takes the first, max's gradient splits evenly); views;
// the CPU kernel against a naive loop for every combination of axes; float64 gradchecks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "op_test_util.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::check_tensor;
using tg::testing::relative_error;
using tg::testing::strided_values;

namespace {

enum class Reduce { Sum, Mean, Max };

// The naive reduction of row-major `values` of `shape` over the sorted `axes` (empty: all), in
// keepdim order (which is also the order without keepdim).
std::vector<double> naive_reduce(const std::vector<double>& values, const Shape& shape,
                                 std::vector<int> axes, Reduce op) {
  if (axes.empty())
    for (int d = 0; d < static_cast<int>(shape.size()); ++d) axes.push_back(d);
  Shape out_shape = shape;
  int64_t count = 1;
  for (int a : axes) {
    out_shape[a] = 1;
    count *= shape[a];
  }
  const Strides out_strides = contiguous_strides(out_shape);
  std::vector<double> out(static_cast<size_t>(numel(out_shape)),
                          op == Reduce::Max ? -std::numeric_limits<double>::infinity() : 0.0);
  std::vector<int64_t> index(shape.size(), 0);
  for (size_t n = 0; n < values.size(); ++n) {
    int64_t o = 0;
    for (size_t d = 0; d < shape.size(); ++d)
      if (out_shape[d] != 1) o += index[d] * out_strides[d];
    if (op == Reduce::Max) out[o] = std::max(out[o], values[n]);
    else out[o] += values[n];
    for (size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  if (op == Reduce::Mean)
    for (double& v : out) v /= static_cast<double>(count);
  return out;
}

// The index of the first maximum along `axis`, naively, in keepdim order.
std::vector<double> naive_argmax(const std::vector<double>& values, const Shape& shape, int axis) {
  const Strides strides = contiguous_strides(shape);
  Shape out_shape = shape;
  out_shape[axis] = 1;
  std::vector<double> out;
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t n = 0; n < numel(out_shape); ++n) {
    int64_t base = 0;
    for (size_t d = 0; d < shape.size(); ++d) base += index[d] * strides[d];
    int64_t best = 0;
    for (int64_t i = 1; i < shape[axis]; ++i)
      if (values[base + i * strides[axis]] > values[base + best * strides[axis]]) best = i;
    out.push_back(static_cast<double>(best));
    for (size_t d = out_shape.size(); d-- > 0;) {
      if (++index[d] < out_shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

Shape reduced_shape(const Shape& shape, const std::vector<int>& axes, bool keepdim) {
  Shape out;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    const bool reduced = axes.empty() || std::find(axes.begin(), axes.end(), d) != axes.end();
    if (!reduced) out.push_back(shape[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

}  // namespace

// --- by hand -----------------------------------------------------------------------------------

TEST_CASE("reduce: sum, mean, max over single, all and negative axes of a 2x3", "[reduce]") {
  Tensor x = from_vector<float>({1, 5, 3, 4, 2, 6}, {2, 3});
  check_tensor(sum(x, {0}), {3}, {5, 7, 9});
  check_tensor(sum(x, {1}), {2}, {9, 12});
  check_tensor(sum(x, {-1}), {2}, {9, 12});
  check_tensor(sum(x, {-2}), {3}, {5, 7, 9});
  check_tensor(sum(x), {}, {21});
  check_tensor(sum(x, {0, 1}), {}, {21});
  check_tensor(sum(x, {1, 0}), {}, {21});
  check_tensor(sum(x, {0}, true), {1, 3}, {5, 7, 9});
  check_tensor(sum(x, {1}, true), {2, 1}, {9, 12});
  check_tensor(sum(x, {}, true), {1, 1}, {21});
  check_tensor(x.sum({1}), {2}, {9, 12});

  check_tensor(mean(x, {0}), {3}, {2.5, 3.5, 4.5});
  check_tensor(mean(x, {-1}, true), {2, 1}, {3, 4});
  check_tensor(mean(x), {}, {3.5});
  check_tensor(x.mean({0, 1}, true), {1, 1}, {3.5});

  check_tensor(max(x, {0}), {3}, {4, 5, 6});
  check_tensor(max(x, {1}), {2}, {5, 6});
  check_tensor(max(x, {-1}, true), {2, 1}, {5, 6});
  check_tensor(max(x), {}, {6});
  check_tensor(x.max({0, 1}, true), {1, 1}, {6});
  CHECK(max(x).dtype() == DType::Float32);
}

TEST_CASE("reduce: several axes of a [2,3,4], with keepdim and negative axes", "[reduce]") {
  Tensor x = arange(0, 24, 1, DType::Float64).reshape({2, 3, 4});  // x[i,j,k] = 12i + 4j + k
  // sum over i and k: 32j + 60.
  check_tensor(sum(x, {0, 2}), {3}, {60, 92, 124});
  check_tensor(sum(x, {2, 0}, true), {1, 3, 1}, {60, 92, 124});
  check_tensor(sum(x, {-1, -3}), {3}, {60, 92, 124});
  // sum over j: 36i + 12 + 3k.
  check_tensor(sum(x, {1}), {2, 4}, {12, 15, 18, 21, 48, 51, 54, 57});
  check_tensor(sum(x, {-2}, true), {2, 1, 4}, {12, 15, 18, 21, 48, 51, 54, 57});
  check_tensor(mean(x, {0, 2}), {3}, {7.5, 11.5, 15.5});
  check_tensor(mean(x, {1, 2}), {2}, {5.5, 17.5});
  check_tensor(max(x, {0, 2}), {3}, {15, 19, 23});
  check_tensor(max(x, {1, 2}, true), {2, 1, 1}, {11, 23});
  check_tensor(max(x, {0, 1}), {4}, {20, 21, 22, 23});
  check_tensor(sum(x, {0, 1, 2}, true), {1, 1, 1}, {276});
}

TEST_CASE("reduce: int64 sums and maxima stay int64", "[reduce]") {
  Tensor x = from_vector<int64_t>({3, -7, 10, 2}, {2, 2});
  CHECK(sum(x).dtype() == DType::Int64);
  CHECK(sum(x, {0}).to_vector<int64_t>() == std::vector<int64_t>{13, -5});
  CHECK(max(x, {1}).to_vector<int64_t>() == std::vector<int64_t>{3, 10});
  CHECK(sum(x).item<int64_t>() == 8);
  // Large int64 values are summed exactly (no detour through double).
  Tensor big = from_vector<int64_t>({(int64_t{1} << 60) + 1, 1});
  CHECK(sum(big).to_vector<int64_t>()[0] == (int64_t{1} << 60) + 2);
  CHECK_THROWS_AS(mean(x), Error);  // mean needs a float tensor
}

TEST_CASE("reduce: argmax is int64, takes the first maximum on ties, keeps dims on request",
          "[reduce]") {
  Tensor x = from_vector<float>({1, 5, 3, 4, 2, 6}, {2, 3});
  Tensor a0 = argmax(x, 0);
  CHECK(a0.dtype() == DType::Int64);
  REQUIRE(a0.shape() == Shape{3});
  CHECK(a0.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1});
  CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  CHECK(argmax(x, -1).to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  Tensor k = argmax(x, 1, /*keepdim=*/true);
  REQUIRE(k.shape() == Shape{2, 1});
  CHECK(k.to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  CHECK(x.argmax(0, true).shape() == Shape{1, 3});

  Tensor ties = from_vector<double>({3, 1, 3, 2, 2, 2, 0, 7, 7}, {3, 3});
  CHECK(argmax(ties, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1});
  CHECK(argmax(ties, 0).to_vector<int64_t>() == std::vector<int64_t>{0, 2, 2});
  Tensor ints = from_vector<int64_t>({4, 9, 9, -1});
  CHECK(argmax(ints, 0).item<int64_t>() == 1);
  CHECK(argmax(ints, 0).dim() == 0);

  // On a 3-D tensor along the middle axis.
  Tensor y = from_vector<float>({0, 9, 1, 1, 5, 2, 7, 3, 7, 8, 3, 1}, {2, 3, 2});
  CHECK(argmax(y, 1).to_vector<int64_t>() == std::vector<int64_t>{2, 0, 0, 1});
  CHECK(argmax(y, 1).shape() == Shape{2, 2});
  CHECK_FALSE(argmax(x.detach().requires_grad_(), 0).requires_grad());
}

TEST_CASE("reduce: max's gradient splits evenly among ties", "[reduce]") {
  Tensor v = from_vector<double>({1, 3, 3, 2}).requires_grad_();
  max(v).backward();
  check_tensor(v.grad(), {4}, {0, 0.5, 0.5, 0}, 1e-15);

  Tensor m = from_vector<double>({1, 4, 4, 4, 2, 0, 2, -1}, {2, 4}).requires_grad_();
  Tensor rows = max(m, {1});
  rows.backward(from_vector<double>({1, 2}));
  check_tensor(m.grad(), {2, 4}, {0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 1, 0, 1, 0}, 1e-15);

  Tensor all = from_vector<float>({5, 5, 5, 1}, {2, 2}).requires_grad_();
  max(all, {}, true).sum().backward();
  // Built element by element: GCC 12.2 with AVX-512 (-march=native) miscompiles the literal
  // list {1.0 / 3, 1.0 / 3, 1.0 / 3, 0} here into four thirds.
  std::vector<double> thirds(4, 1.0 / 3);
  thirds[3] = 0;
  check_tensor(all.grad(), {2, 2}, thirds);

  // No ties: the whole gradient goes to the single maximum.
  Tensor one = from_vector<double>({1, 7, 3, 2}, {2, 2}).requires_grad_();
  max(one, {0}).backward(from_vector<double>({10, 20}));
  check_tensor(one.grad(), {2, 2}, {0, 20, 10, 0}, 1e-15);
}

TEST_CASE("reduce: sum and mean gradients broadcast back over the reduced axes", "[reduce]") {
  Tensor x = ones({2, 3, 4}, DType::Float64).requires_grad_();
  sum(x, {1}).backward(from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}));
  std::vector<double> expected;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) expected.push_back(1 + 4 * i + k);
  check_tensor(x.grad(), {2, 3, 4}, expected, 0);

  Tensor y = ones({2, 3}).requires_grad_();
  mean(y).backward();
  check_tensor(y.grad(), {2, 3}, std::vector<double>(6, 1.0 / 6));
}

TEST_CASE("reduce: reductions of non-contiguous views", "[reduce]") {
  Tensor base = arange(0, 12, 1, DType::Float32).reshape({3, 4});
  Tensor t = base.t();  // t[j, i] = base[i, j] = 4i + j
  check_tensor(sum(t, {0}), {3}, {6, 22, 38});
  check_tensor(sum(t, {1}), {4}, {12, 15, 18, 21});
  check_tensor(max(t, {1}), {4}, {8, 9, 10, 11});
  check_tensor(mean(t, {0}, true), {1, 3}, {1.5, 5.5, 9.5});
  CHECK(argmax(t, 1).to_vector<int64_t>() == std::vector<int64_t>{2, 2, 2, 2});
  CHECK(argmax(t, 0).to_vector<int64_t>() == std::vector<int64_t>{3, 3, 3});

  Tensor stepped = base.slice(1, 0, 4, 2);  // [[0,2],[4,6],[8,10]]
  check_tensor(sum(stepped, {0}), {2}, {12, 18});
  check_tensor(max(stepped, {1}), {3}, {2, 6, 10});
  check_tensor(sum(base.slice(0, 0, 3, 2), {1}), {2}, {6, 38});

  Tensor expanded = from_vector<float>({1, 2, 3}).expand({4, 3});
  check_tensor(sum(expanded, {0}), {3}, {4, 8, 12});
  check_tensor(sum(expanded), {}, {24});
  check_tensor(max(expanded, {1}), {4}, {3, 3, 3, 3});
  CHECK(argmax(expanded, 0).to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0});

  Tensor permuted = arange(0, 24, 1, DType::Float64).reshape({2, 3, 4}).permute({2, 0, 1});
  check_tensor(sum(permuted, {1, 2}), {4}, {60, 66, 72, 78});
}

TEST_CASE("reduce: empty inputs and bad axes", "[reduce]") {
  check_tensor(sum(zeros({0, 3}), {0}), {3}, {0, 0, 0});
  check_tensor(sum(zeros({0})), {}, {0});
  CHECK_THROWS_AS(max(zeros({0, 3}), {0}), Error);
  CHECK_THROWS_AS(mean(zeros({0, 3}), {0}), Error);
  CHECK_THROWS_AS(argmax(zeros({0, 3}), 0), Error);
  CHECK_THROWS_AS(sum(ones({2, 3}), {2}), Error);
  CHECK_THROWS_AS(sum(ones({2, 3}), {-3}), Error);
  CHECK_THROWS_AS(sum(ones({2, 3}), {1, -1}), Error);  // the same axis twice
  CHECK_THROWS_AS(argmax(ones({2, 3}), 2), Error);
}

// --- the kernel against a naive loop ------------------------------------------------------------

TEST_CASE("reduce: every combination of axes of a random [7,5,3] matches a naive loop",
          "[reduce]") {
  Generator gen(31);
  const Shape shape{7, 5, 3};
  const std::vector<std::vector<int>> combos = {{},     {0},    {1},    {2},
                                                {0, 1}, {0, 2}, {1, 2}, {0, 1, 2}};
  for (DType dtype : {DType::Float32, DType::Float64})
    for (bool transposed : {false, true}) {
      // The same logical [7,5,3] values, contiguous or as a permuted view of a [3,7,5] tensor.
      Tensor x = transposed ? randn({3, 7, 5}, gen, dtype).permute({1, 2, 0})
                            : randn(shape, gen, dtype);
      REQUIRE(x.shape() == shape);
      const std::vector<double> values = strided_values(x);
      for (const std::vector<int>& axes : combos)
        for (bool keepdim : {false, true})
          for (bool negative : {false, true}) {
            std::vector<int64_t> spelled;  // reversed order and, optionally, negative
            for (auto it = axes.rbegin(); it != axes.rend(); ++it)
              spelled.push_back(negative ? *it - 3 : *it);
            INFO(dtype_name(dtype) << (transposed ? " permuted view" : " contiguous")
                                   << " axes " << shape_str(spelled) << " keepdim " << keepdim);
            const Shape out_shape = reduced_shape(shape, axes, keepdim);
            const double tol = dtype == DType::Float32 ? 1e-6 : 1e-13;
            Tensor s = sum(x, spelled, keepdim), m = mean(x, spelled, keepdim),
                   mx = max(x, spelled, keepdim);
            REQUIRE(s.shape() == out_shape);
            REQUIRE(m.shape() == out_shape);
            REQUIRE(mx.shape() == out_shape);
            CHECK(relative_error(s.to_vector<double>(),
                                 naive_reduce(values, shape, axes, Reduce::Sum)) < tol);
            CHECK(relative_error(m.to_vector<double>(),
                                 naive_reduce(values, shape, axes, Reduce::Mean)) < tol);
            // The one-pass mean is the sum scaled, to the bit (kernels/backend.h).
            const double count = static_cast<double>(x.numel() / s.numel());
            CHECK(m.to_vector<double>() ==
                  scale(sum(x, spelled, keepdim), 1 / count).to_vector<double>());
            CHECK(mx.to_vector<double>() == naive_reduce(values, shape, axes, Reduce::Max));
          }
      for (int axis = 0; axis < 3; ++axis)
        for (bool keepdim : {false, true}) {
          INFO(dtype_name(dtype) << " argmax axis " << axis << " keepdim " << keepdim);
          Tensor a = argmax(x, keepdim ? axis : axis - 3, keepdim);
          REQUIRE(a.shape() == reduced_shape(shape, {axis}, keepdim));
          CHECK(a.to_vector<double>() == naive_argmax(values, shape, axis));
        }
    }
}

TEST_CASE("reduce: large reductions (threaded rows) match a naive loop; sums accumulate in double",
          "[reduce]") {
  Generator gen(32);
  Tensor tall = randn({20011, 3}, gen);
  const std::vector<double> tv = strided_values(tall);
  CHECK(relative_error(sum(tall, {1}).to_vector<double>(),
                       naive_reduce(tv, {20011, 3}, {1}, Reduce::Sum)) < 1e-6);
  CHECK(max(tall, {1}).to_vector<double>() == naive_reduce(tv, {20011, 3}, {1}, Reduce::Max));
  CHECK(argmax(tall, 1).to_vector<double>() == naive_argmax(tv, {20011, 3}, 1));
  CHECK(relative_error(sum(tall, {0}).to_vector<double>(),
                       naive_reduce(tv, {20011, 3}, {0}, Reduce::Sum)) < 1e-6);
  Tensor wide = tall.t();  // [3, 20011], non-contiguous
  CHECK(relative_error(sum(wide, {0}).to_vector<double>(),
                       naive_reduce(tv, {20011, 3}, {1}, Reduce::Sum)) < 1e-6);

  // 100003 copies of 0.1f: a float accumulator drifts by ~1e-4 relative, a double one does not.
  Tensor tenths = full({100003}, 0.1);
  const double exact = 100003 * static_cast<double>(0.1f);
  CHECK(std::abs(sum(tenths).item() - exact) / exact < 1e-6);
  CHECK(std::abs(mean(tenths).item() - static_cast<double>(0.1f)) < 1e-7);
}

// --- gradients ---------------------------------------------------------------------------------

TEST_CASE("reduce: gradcheck of sum, mean and max", "[reduce]") {
  Generator gen(33);
  Tensor x = randn({2, 3, 4}, gen, DType::Float64).requires_grad_();
  for (const std::vector<int64_t>& axes :
       std::vector<std::vector<int64_t>>{{}, {0}, {1}, {-1}, {0, 2}, {1, 2}, {0, 1, 2}})
    for (bool keepdim : {false, true}) {
      INFO("axes " << shape_str(axes) << " keepdim " << keepdim);
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return sum(in[0], axes, keepdim); },
                      {x});
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return mean(in[0], axes, keepdim); },
                      {x});
      // Random normals have no ties, so max is differentiable at x.
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return max(in[0], axes, keepdim); },
                      {x});
    }
  // Through a non-contiguous view, and composed with elementwise ops.
  Tensor y = randn({3, 5}, gen, DType::Float64).requires_grad_();
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return sum(in[0].t() * in[0].t(), {0}); },
                  {y});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return max(in[0].slice(1, 0, 5, 2), {0}); },
                  {y});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return in[0] - mean(in[0], {-1}, true); }, {y});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return exp(in[0] - max(in[0], {1}, true)); }, {y});
}
