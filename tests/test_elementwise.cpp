// Elementwise op tests: forward values worked out by hand, broadcasting, non-contiguous inputs
// (transposed, stepped slices, expanded), the strided CPU kernels against a naive host reference on
// random awkward sizes, and float64 finite-difference gradchecks of every differentiable op.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "op_test_util.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::broadcast_values;
using tg::testing::check_tensor;
using tg::testing::relative_error;
using tg::testing::strided_values;

namespace {

constexpr double kSqrt2 = 1.41421356237309504880;

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / kSqrt2)); }

// A float64 leaf with every element at least 1e-2 from zero, so that relu's kink stays outside
// the finite-difference stencil.
Tensor away_from_zero(const Tensor& x) {
  std::vector<double> v = x.to_vector<double>();
  for (double& e : v)
    if (std::abs(e) < 1e-2) e = std::copysign(0.25, e);
  return from_vector(v, x.shape()).requires_grad_();
}

// How a test input is laid out in memory.
enum class Layout { Contiguous, Transposed, Stepped, Expanded };

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contiguous: return "contiguous";
    case Layout::Transposed: return "transposed";
    case Layout::Stepped: return "sliced with step 2";
    case Layout::Expanded: return "expanded";
  }
  return "?";
}

// A contiguous tensor of `shape` with values uniform in [low, high), or rounded to integers
// (so that comparisons see ties, and int64 tensors hold exact values).
Tensor make_values(const Shape& shape, Generator& gen, DType dtype, double low, double high,
                   bool integers) {
  if (!integers) return uniform(shape, low, high, gen, dtype);
  std::vector<double> v = uniform(shape, low, high, gen, DType::Float64).to_vector<double>();
  for (double& e : v) e = std::round(e);
  const Tensor t = shape.empty() ? scalar(v[0], DType::Float64) : from_vector(v, shape);
  return t.to(dtype);
}

// A tensor of `shape` laid out as asked: the transpose of a contiguous tensor, every other row of
// a taller one, or a size-1 first axis expanded (stride 0).
Tensor make_input(const Shape& shape, Layout layout, Generator& gen, DType dtype, double low,
                  double high, bool integers = false) {
  Shape base = shape;
  switch (shape.empty() ? Layout::Contiguous : layout) {
    case Layout::Contiguous: break;
    case Layout::Transposed:
      if (shape.size() < 2) break;
      std::swap(base[base.size() - 1], base[base.size() - 2]);
      return make_values(base, gen, dtype, low, high, integers).transpose(-2, -1);
    case Layout::Stepped:
      base[0] = 2 * shape[0] + 1;
      return make_values(base, gen, dtype, low, high, integers).slice(0, 1, base[0], 2);
    case Layout::Expanded:
      base[0] = 1;
      return make_values(base, gen, dtype, low, high, integers).expand(shape);
  }
  return make_values(shape, gen, dtype, low, high, integers);
}

struct UnaryCase {
  std::string name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double low, high;  // input range
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -3, 3},
      {"-x", [](const Tensor& x) { return -x; }, [](double x) { return -x; }, -3, 3},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, -4, 4},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.01, 5},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0, 5},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -4, 4},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x < 0 ? 0.0 : x; },
       -3, 3},
      {"gelu", [](const Tensor& x) { return gelu(x); }, gelu_ref, -5, 5},
      {"pow 2", [](const Tensor& x) { return pow(x, 2); }, [](double x) { return x * x; }, -3, 3},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); },
       [](double x) { return std::sqrt(x); }, 0, 5},
      {"pow 3", [](const Tensor& x) { return pow(x, 3); }, [](double x) { return x * x * x; }, -3, 3},
      {"pow 0", [](const Tensor& x) { return pow(x, 0); }, [](double) { return 1.0; }, -3, 3},
      {"scale 1.5", [](const Tensor& x) { return scale(x, 1.5); }, [](double x) { return 1.5 * x; },
       -3, 3},
  };
}

struct BinaryCase {
  std::string name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
  bool integer_inputs;  // small integers, so comparisons see ties
};

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; },
       [](double a, double b) { return a + b; }, false},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; },
       [](double a, double b) { return a - b; }, false},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; },
       [](double a, double b) { return a * b; }, false},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; },
       [](double a, double b) { return a / b; }, false},
      {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); },
       [](double a, double b) { return double(a == b); }, true},
      {"ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); },
       [](double a, double b) { return double(a != b); }, true},
      {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); },
       [](double a, double b) { return double(a < b); }, true},
      {"le", [](const Tensor& a, const Tensor& b) { return le(a, b); },
       [](double a, double b) { return double(a <= b); }, true},
      {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); },
       [](double a, double b) { return double(a > b); }, true},
      {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); },
       [](double a, double b) { return double(a >= b); }, true},
  };
}

}  // namespace

// --- forward values by hand --------------------------------------------------------------------

TEST_CASE("elementwise: add, sub, mul, div, neg by hand", "[elementwise]") {
  Tensor a = from_vector<float>({1, 2, 3, 4}, {2, 2});
  Tensor b = from_vector<float>({2, 4, -1, 0.5f}, {2, 2});
  check_tensor(add(a, b), {2, 2}, {3, 6, 2, 4.5});
  check_tensor(sub(a, b), {2, 2}, {-1, -2, 4, 3.5});
  check_tensor(mul(a, b), {2, 2}, {2, 8, -3, 2});
  check_tensor(div(a, b), {2, 2}, {0.5, 0.5, -3, 8});
  check_tensor(neg(a), {2, 2}, {-1, -2, -3, -4});
  check_tensor(a + b, {2, 2}, {3, 6, 2, 4.5});
  check_tensor(a - b, {2, 2}, {-1, -2, 4, 3.5});
  check_tensor(a * b, {2, 2}, {2, 8, -3, 2});
  check_tensor(a / b, {2, 2}, {0.5, 0.5, -3, 8});
  check_tensor(-a, {2, 2}, {-1, -2, -3, -4});
  CHECK((a + b).dtype() == DType::Float32);

  Tensor c = from_vector<double>({1.5, -2.25}), d = from_vector<double>({0.5, 4});
  check_tensor(c * d, {2}, {0.75, -9}, 1e-15);
  CHECK((c * d).dtype() == DType::Float64);
}

TEST_CASE("elementwise: int64 arithmetic stays int64, integer division truncates",
          "[elementwise]") {
  Tensor a = from_vector<int64_t>({7, -7, 6, 0});
  Tensor b = from_vector<int64_t>({2, 2, 3, 5});
  CHECK((a + b).dtype() == DType::Int64);
  CHECK((a + b).to_vector<int64_t>() == std::vector<int64_t>{9, -5, 9, 5});
  CHECK((a - b).to_vector<int64_t>() == std::vector<int64_t>{5, -9, 3, -5});
  CHECK((a * b).to_vector<int64_t>() == std::vector<int64_t>{14, -14, 18, 0});
  CHECK((a / b).to_vector<int64_t>() == std::vector<int64_t>{3, -3, 2, 0});
  CHECK((-a).to_vector<int64_t>() == std::vector<int64_t>{-7, 7, -6, 0});
  CHECK_THROWS_AS(a / from_vector<int64_t>({1, 0, 1, 1}), Error);
  // Overflow wraps around in two's complement, as in PyTorch: it is neither undefined behaviour
  // nor, for INT64_MIN / -1, x86's division trap (SIGFPE).
  const Tensor extremes = from_vector<int64_t>({INT64_MIN, INT64_MAX, INT64_MIN, -1});
  const Tensor others = from_vector<int64_t>({-1, 1, 2, INT64_MIN});
  CHECK((extremes / others).to_vector<int64_t>() == std::vector<int64_t>{INT64_MIN, INT64_MAX,
                                                                         INT64_MIN / 2, 0});
  CHECK((extremes + others).to_vector<int64_t>() ==
        std::vector<int64_t>{INT64_MAX, INT64_MIN, INT64_MIN + 2, INT64_MAX});
  CHECK((extremes - others).to_vector<int64_t>() ==
        std::vector<int64_t>{INT64_MIN + 1, INT64_MAX - 1, INT64_MAX - 1, INT64_MAX});
  CHECK((extremes * others).to_vector<int64_t>() ==
        std::vector<int64_t>{INT64_MIN, INT64_MAX, 0, INT64_MIN});
  CHECK((-extremes).to_vector<int64_t>() ==
        std::vector<int64_t>{INT64_MIN, -INT64_MAX, INT64_MIN, 1});
  CHECK(from_vector<int64_t>({INT64_MAX, 1, INT64_MAX, 2}).sum().item<int64_t>() == 1);
  // Float-only math refuses integers rather than truncating silently.
  CHECK_THROWS_AS(exp(a), Error);
  CHECK_THROWS_AS(relu(a), Error);
  CHECK_THROWS_AS(scale(a, 2), Error);
}

TEST_CASE("elementwise: exp, log, sqrt, tanh, relu, scale by hand", "[elementwise]") {
  Tensor x = from_vector<float>({-2, -0.5f, 0, 1, 3});
  check_tensor(exp(x), {5}, {std::exp(-2.0), std::exp(-0.5), 1, std::exp(1.0), std::exp(3.0)});
  check_tensor(tanh(x), {5}, {std::tanh(-2.0), std::tanh(-0.5), 0, std::tanh(1.0), std::tanh(3.0)});
  check_tensor(relu(x), {5}, {0, 0, 0, 1, 3});
  check_tensor(scale(x, -2), {5}, {4, 1, 0, -2, -6});
  check_tensor(x.exp(), {5}, {std::exp(-2.0), std::exp(-0.5), 1, std::exp(1.0), std::exp(3.0)});
  check_tensor(x.relu(), {5}, {0, 0, 0, 1, 3});
  check_tensor(x.tanh(), {5}, {std::tanh(-2.0), std::tanh(-0.5), 0, std::tanh(1.0), std::tanh(3.0)});

  Tensor p = from_vector<float>({0.25f, 1, 4, 9});
  check_tensor(log(p), {4}, {std::log(0.25), 0, std::log(4.0), std::log(9.0)});
  check_tensor(sqrt(p), {4}, {0.5, 1, 2, 3});
  check_tensor(p.log(), {4}, {std::log(0.25), 0, std::log(4.0), std::log(9.0)});
  check_tensor(p.sqrt(), {4}, {0.5, 1, 2, 3});
  check_tensor(log(from_vector<double>({0.0})), {1}, {-INFINITY});
}

TEST_CASE("elementwise: pow with scalar exponents 2, 0.5, 3 and 0", "[elementwise]") {
  Tensor x = from_vector<double>({-2, 0, 0.5, 3});
  check_tensor(pow(x, 2), {4}, {4, 0, 0.25, 9}, 1e-15);
  check_tensor(pow(x, 3), {4}, {-8, 0, 0.125, 27}, 1e-15);
  check_tensor(pow(x, 0), {4}, {1, 1, 1, 1}, 0);  // 0^0 = 1, as std::pow and PyTorch
  check_tensor(x.pow(2), {4}, {4, 0, 0.25, 9}, 1e-15);
  Tensor p = from_vector<double>({0, 0.25, 4, 2});
  check_tensor(pow(p, 0.5), {4}, {0, 0.5, 2, std::sqrt(2.0)}, 1e-15);
  CHECK(std::isnan(pow(from_vector<double>({-4}), 0.5).item()));
}

TEST_CASE("elementwise: gelu is the exact erf form", "[elementwise]") {
  std::vector<double> xs;
  for (double v = -6; v <= 6; v += 0.375) xs.push_back(v);
  std::vector<double> expected;
  for (double v : xs) expected.push_back(gelu_ref(v));
  check_tensor(gelu(from_vector(xs)), {static_cast<int64_t>(xs.size())}, expected, 1e-14);
  std::vector<float> xf(xs.begin(), xs.end());
  check_tensor(gelu(from_vector(xf)), {static_cast<int64_t>(xs.size())}, expected, 1e-6);
  // Known values: gelu(1) = Phi(1) = 0.8413447..., gelu(-1) = -(1 - Phi(1)).
  check_tensor(gelu(from_vector<double>({1, -1, 0})), {3},
               {0.8413447460685429, -0.15865525393145707, 0}, 1e-14);
}

TEST_CASE("elementwise: scalar operands on either side", "[elementwise]") {
  Tensor x = from_vector<float>({1, 2, 4});
  check_tensor(x + 2.0, {3}, {3, 4, 6});
  check_tensor(2.0 + x, {3}, {3, 4, 6});
  check_tensor(x - 2.0, {3}, {-1, 0, 2});
  check_tensor(2.0 - x, {3}, {1, 0, -2});
  check_tensor(x * 3.0, {3}, {3, 6, 12});
  check_tensor(3.0 * x, {3}, {3, 6, 12});
  check_tensor(x / 2.0, {3}, {0.5, 1, 2});
  check_tensor(2.0 / x, {3}, {2, 1, 0.5});
  CHECK((2.0 - x).dtype() == DType::Float32);

  Tensor d = from_vector<double>({0.1, 0.2});
  CHECK((d + 0.1).dtype() == DType::Float64);
  check_tensor(d + 0.1, {2}, {0.2, 0.1 + 0.2}, 1e-16);  // no float32 round trip
  Tensor i = from_vector<int64_t>({1, 2});
  CHECK((i * 3.0).dtype() == DType::Int64);
  CHECK((i * 3.0).to_vector<int64_t>() == std::vector<int64_t>{3, 6});
  CHECK((10.0 - i).to_vector<int64_t>() == std::vector<int64_t>{9, 8});
}

TEST_CASE("elementwise: comparisons give 1 or 0 in the input dtype", "[elementwise]") {
  auto run = [](DType dtype) {
    INFO(dtype_name(dtype));
    Tensor a = from_vector<double>({1, 2, 3, -1}).to(dtype);
    Tensor b = from_vector<double>({1, 3, 2, -1}).to(dtype);
    for (const Tensor& r : {eq(a, b), ne(a, b), lt(a, b), le(a, b), gt(a, b), ge(a, b)})
      CHECK(r.dtype() == dtype);
    check_tensor(eq(a, b), {4}, {1, 0, 0, 1}, 0);
    check_tensor(ne(a, b), {4}, {0, 1, 1, 0}, 0);
    check_tensor(lt(a, b), {4}, {0, 1, 0, 0}, 0);
    check_tensor(le(a, b), {4}, {1, 1, 0, 1}, 0);
    check_tensor(gt(a, b), {4}, {0, 0, 1, 0}, 0);
    check_tensor(ge(a, b), {4}, {1, 0, 1, 1}, 0);
    // Broadcast: a column against a row.
    Tensor col = from_vector<double>({1, 2, 3}, {3, 1}).to(dtype);
    Tensor row = from_vector<double>({2, 3}, {1, 2}).to(dtype);
    check_tensor(lt(col, row), {3, 2}, {1, 1, 0, 1, 0, 0}, 0);
  };
  run(DType::Float32);
  run(DType::Float64);
  run(DType::Int64);
}

TEST_CASE("elementwise: comparisons are not differentiable", "[elementwise]") {
  Tensor x = from_vector<double>({1, 2}).requires_grad_();
  Tensor y = from_vector<double>({2, 2});
  CHECK_FALSE(eq(x, y).requires_grad());
  CHECK_FALSE(gt(x, y).requires_grad());
}

TEST_CASE("elementwise: mixed dtypes and incompatible shapes are errors", "[elementwise]") {
  Tensor f = ones({3}), d = ones({3}, DType::Float64);
  CHECK_THROWS_AS(f + d, Error);
  CHECK_THROWS_AS(ones({3}) + ones({4}), Error);
  CHECK_THROWS_AS(ones({2, 3}) * ones({3, 2}), Error);
}

// --- broadcasting and layouts ------------------------------------------------------------------

TEST_CASE("elementwise: broadcasting [3,1]+[1,4], [2,3,4]*[4], [5]+0-d", "[elementwise]") {
  Tensor col = from_vector<float>({0, 10, 20}, {3, 1});
  Tensor row = from_vector<float>({1, 2, 3, 4}, {1, 4});
  check_tensor(col + row, {3, 4}, {1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24});
  check_tensor(row + col, {3, 4}, {1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24});
  check_tensor(col - row, {3, 4}, {-1, -2, -3, -4, 9, 8, 7, 6, 19, 18, 17, 16});

  Tensor x = arange(0, 24, 1, DType::Float32).reshape({2, 3, 4});
  Tensor w = from_vector<float>({1, -1, 2, 0});
  std::vector<double> expected;
  for (int i = 0; i < 24; ++i) expected.push_back(i * std::vector<double>{1, -1, 2, 0}[i % 4]);
  check_tensor(x * w, {2, 3, 4}, expected);
  check_tensor(w * x, {2, 3, 4}, expected);

  Tensor v = from_vector<float>({1, 2, 3, 4, 5});
  Tensor s = scalar(0.5);
  check_tensor(v + s, {5}, {1.5, 2.5, 3.5, 4.5, 5.5});
  check_tensor(s / v, {5}, {0.5, 0.25, 0.5 / 3, 0.125, 0.1});
  check_tensor(s * s, {}, {0.25});

  // Size-1 axes on both sides, and a rank difference: [2,1,3] - [4,1] -> [2,4,3].
  Tensor p = arange(0, 6, 1, DType::Float32).reshape({2, 1, 3});
  Tensor q = from_vector<float>({0, 1, 2, 3}, {4, 1});
  Tensor r = p - q;
  REQUIRE(r.shape() == Shape{2, 4, 3});
  std::vector<double> exp_r;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k) exp_r.push_back((i * 3 + k) - j);
  check_tensor(r, {2, 4, 3}, exp_r);
}

TEST_CASE("elementwise: non-contiguous inputs (transposed, stepped slice, expanded)",
          "[elementwise]") {
  Tensor base = arange(0, 12, 1, DType::Float32).reshape({3, 4});  // rows 0..3, 4..7, 8..11
  Tensor t = base.t();                                              // [4, 3]
  REQUIRE_FALSE(t.is_contiguous());
  check_tensor(t + 1.0, {4, 3}, {1, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8, 12});
  check_tensor(exp(t * 0.0), {4, 3}, std::vector<double>(12, 1.0));
  check_tensor(t * t, {4, 3}, {0, 16, 64, 1, 25, 81, 4, 36, 100, 9, 49, 121});

  Tensor stepped = base.slice(1, 0, 4, 2);  // columns 0 and 2: [[0,2],[4,6],[8,10]]
  REQUIRE_FALSE(stepped.is_contiguous());
  check_tensor(neg(stepped), {3, 2}, {0, -2, -4, -6, -8, -10});
  check_tensor(stepped - base.slice(1, 1, 4, 2), {3, 2}, {-1, -1, -1, -1, -1, -1});
  check_tensor(sqrt(stepped.slice(0, 1, 3, 1)), {2, 2},
               {2, std::sqrt(6.0), std::sqrt(8.0), std::sqrt(10.0)});

  Tensor expanded = from_vector<float>({1, 2, 3}).expand({2, 3});
  REQUIRE(expanded.strides()[0] == 0);
  check_tensor(expanded * base.slice(1, 0, 3).slice(0, 0, 2), {2, 3}, {0, 2, 6, 4, 10, 18});
  check_tensor(relu(scale(expanded, -1.0) + 2.5), {2, 3}, {1.5, 0.5, 0, 1.5, 0.5, 0});
  // A 0-d value expanded to a matrix and a transposed operand together.
  check_tensor(scalar(2.0).expand({4, 3}) * t, {4, 3}, {0, 8, 16, 2, 10, 18, 4, 12, 20, 6, 14, 22});
}

TEST_CASE("elementwise: masked_fill with a causal mask broadcast over [B,H,T,T]",
          "[elementwise]") {
  constexpr int64_t B = 2, H = 3, T = 5;
  Generator gen(7);
  Tensor scores = randn({B, H, T, T}, gen);
  // mask[i, j] = 1 above the diagonal (j > i): the future a causal model must not see.
  Tensor positions = arange(T);
  Tensor mask = gt(positions.unsqueeze(0), positions.unsqueeze(1));  // int64 [T, T]
  REQUIRE(mask.shape() == Shape{T, T});
  Tensor out = masked_fill(scores, mask, -INFINITY);
  REQUIRE(out.shape() == scores.shape());
  const std::vector<float> s = scores.to_vector<float>(), o = out.to_vector<float>();
  for (int64_t n = 0; n < B * H; ++n)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) {
        const size_t k = static_cast<size_t>((n * T + i) * T + j);
        INFO("n " << n << " i " << i << " j " << j);
        if (j > i) CHECK(o[k] == -INFINITY);
        else CHECK(o[k] == s[k]);
      }

  // A float mask works too, and a finite fill value; 0 in the mask keeps x.
  Tensor fmask = mask.to(DType::Float32);
  Tensor out2 = masked_fill(scores, fmask, -1e9);
  CHECK(out2.to_vector<float>()[1] == -1e9f);
  CHECK(out2.to_vector<float>()[0] == s[0]);

  // The gradient is zero where the mask filled, passed through elsewhere.
  Tensor x = randn({B, H, T, T}, gen, DType::Float64).requires_grad_();
  masked_fill(x, mask, -1e9).sum().backward();
  const std::vector<double> g = x.grad().to_vector<double>();
  for (int64_t n = 0; n < B * H; ++n)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j)
        CHECK(g[static_cast<size_t>((n * T + i) * T + j)] == (j > i ? 0.0 : 1.0));

  // The mask may not grow x.
  CHECK_THROWS_AS(masked_fill(ones({T}), mask, 0), Error);
}

// --- fast paths against a naive reference ------------------------------------------------------

TEST_CASE("elementwise: unary kernels match a host reference on awkward sizes and layouts",
          "[elementwise]") {
  Generator gen(11);
  const std::vector<Shape> shapes = {{1}, {37, 29}, {3, 1, 5, 7}, {70001}, {129, 263}};
  for (const UnaryCase& c : unary_cases())
    for (DType dtype : {DType::Float32, DType::Float64})
      for (const Shape& shape : shapes)
        for (Layout layout :
             {Layout::Contiguous, Layout::Transposed, Layout::Stepped, Layout::Expanded}) {
          // Large sizes (the threaded paths, the split of one long row) for two ops in two
          // layouts only: the loop machinery is shared, and threads are slow on a loaded machine.
          if (numel(shape) > 10000 &&
              ((c.name != "exp" && c.name != "gelu") || layout == Layout::Transposed ||
               layout == Layout::Expanded))
            continue;
          INFO(c.name << " " << dtype_name(dtype) << " " << shape_str(shape) << " "
                      << layout_name(layout));
          Tensor x = make_input(shape, layout, gen, dtype, c.low, c.high);
          REQUIRE(x.shape() == shape);
          Tensor out = c.op(x);
          REQUIRE(out.shape() == shape);
          REQUIRE(out.dtype() == dtype);
          std::vector<double> ref = strided_values(x);
          for (double& v : ref) v = c.ref(v);
          CHECK(relative_error(out.to_vector<double>(), ref) <
                (dtype == DType::Float32 ? 1e-6 : 1e-12));
        }
}

TEST_CASE("elementwise: binary kernels match a host reference with broadcasting and layouts",
          "[elementwise]") {
  Generator gen(12);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{7, 13}, {7, 13}},   {{3, 1, 5}, {4, 1}},      {{1}, {17, 3}},     {{}, {5, 2}},
      {{2, 3, 1, 5}, {3, 7, 1}}, {{33, 1}, {1, 65}},  {{70001}, {70001}}, {{129, 257}, {257}},
      {{5, 2}, {}}};
  const std::vector<Layout> layouts = {Layout::Contiguous, Layout::Transposed, Layout::Stepped,
                                       Layout::Expanded};
  for (const BinaryCase& c : binary_cases())
    for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
      // int64 division (truncating, rejecting zero divisors) is checked by hand above.
      if (dtype == DType::Int64 && c.name == "div") continue;
      for (const auto& [sa, sb] : shapes)
        for (size_t l = 0; l < layouts.size(); ++l) {
          const Layout la = layouts[l], lb = layouts[(l + 1) % layouts.size()];
          // Large sizes (the threaded paths): two ops, two layout pairs.
          if (numel(sa) > 10000 && ((c.name != "add" && c.name != "ge") || l % 2 == 1)) continue;
          INFO(c.name << " " << dtype_name(dtype) << " " << shape_str(sa) << " "
                      << layout_name(la) << " with " << shape_str(sb) << " " << layout_name(lb));
          const bool integers = c.integer_inputs || dtype == DType::Int64;
          const double low = c.name == "div" ? 0.5 : -4, high = c.name == "div" ? 3 : 4;
          Tensor a = make_input(sa, la, gen, dtype, -4, 4, integers);
          Tensor b = make_input(sb, lb, gen, dtype, low, high, integers);
          REQUIRE(a.dtype() == dtype);
          REQUIRE(b.dtype() == dtype);
          const Shape out_shape = broadcast_shapes(sa, sb, "test");
          Tensor out = c.op(a, b);
          REQUIRE(out.shape() == out_shape);
          REQUIRE(out.dtype() == dtype);
          const std::vector<double> va = broadcast_values(strided_values(a), sa, out_shape);
          const std::vector<double> vb = broadcast_values(strided_values(b), sb, out_shape);
          std::vector<double> ref(va.size());
          for (size_t i = 0; i < ref.size(); ++i) ref[i] = c.ref(va[i], vb[i]);
          CHECK(relative_error(out.to_vector<double>(), ref) <
                (dtype == DType::Float32 ? 1e-6 : 1e-12));
        }
    }
}

TEST_CASE("elementwise: masked_fill matches a host reference on awkward sizes and layouts",
          "[elementwise]") {
  // The strided kernel walks x, the mask and the output by three strides each: x laid out in
  // every way, masks of every dtype broadcast over leading, middle and last axes (stride 0).
  Generator gen(13);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{7, 13}, {7, 13}}, {{7, 13}, {13}},       {{7, 13}, {7, 1}},  {{3, 5, 9}, {5, 1}},
      {{2, 3, 5, 5}, {5, 5}}, {{129, 257}, {1, 257}}, {{70001}, {70001}}, {{5}, {}}};
  const std::vector<Layout> layouts = {Layout::Contiguous, Layout::Transposed, Layout::Stepped,
                                       Layout::Expanded};
  for (DType dtype : {DType::Float32, DType::Float64})
    for (DType mask_dtype : {DType::Int64, DType::Float32, DType::Float64})
      for (const auto& [sx, sm] : shapes)
        for (size_t l = 0; l < layouts.size(); ++l) {
          if (numel(sx) > 10000 && l % 2 == 1) continue;  // the threaded rows: two layouts
          const Layout lx = layouts[l], lm = layouts[(l + 1) % layouts.size()];
          INFO(dtype_name(dtype) << " " << shape_str(sx) << " " << layout_name(lx) << ", "
                                 << dtype_name(mask_dtype) << " mask " << shape_str(sm) << " "
                                 << layout_name(lm));
          const Tensor x = make_input(sx, lx, gen, dtype, -4, 4);
          // Integers in [-1, 1]: about a third of the mask is 0 (keep x), the rest nonzero.
          const Tensor mask = make_input(sm, lm, gen, mask_dtype, -1.4, 1.4, true);
          const Tensor out = masked_fill(x, mask, -7.5);
          REQUIRE(out.shape() == sx);
          REQUIRE(out.dtype() == dtype);
          const std::vector<double> vx = strided_values(x);
          const std::vector<double> vm = broadcast_values(strided_values(mask), sm, sx);
          std::vector<double> ref(vx.size());
          for (size_t i = 0; i < ref.size(); ++i) ref[i] = vm[i] != 0 ? -7.5 : vx[i];
          CHECK(relative_error(out.to_vector<double>(), ref) == 0);
        }
}

// --- gradients ---------------------------------------------------------------------------------

TEST_CASE("elementwise: gradcheck of add, sub, mul, div with broadcasting", "[elementwise]") {
  Generator gen(21);
  Tensor a = randn({4, 1}, gen, DType::Float64).requires_grad_();
  Tensor b = randn({1, 3}, gen, DType::Float64).requires_grad_();
  Tensor pos = uniform({1, 3}, 0.5, 2, gen, DType::Float64).requires_grad_();
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }, {a, b});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return div(in[0], in[1]); }, {a, pos});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return div(in[1], in[0]); }, {a, pos});

  Tensor x = randn({2, 1, 7}, gen, DType::Float64).requires_grad_();
  Tensor w = randn({7}, gen, DType::Float64).requires_grad_();
  Tensor s = randn({}, gen, DType::Float64).requires_grad_();
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0] * in[1] - in[2]; }, {x, w, s});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0] + in[1] / in[2]; },
                  {randn({3, 1}, gen, DType::Float64).requires_grad_(), x.detach().requires_grad_(),
                   uniform({2, 3, 1}, 0.5, 2, gen, DType::Float64).requires_grad_()});
  // Only one input requires grad; the other is a constant. mul saves each input only for the
  // other's gradient, so either side alone (broadcast, too) must still get its own.
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0] * in[1]; },
                  {randn({3, 5}, gen, DType::Float64).requires_grad_(),
                   randn({3, 5}, gen, DType::Float64)});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0] * in[1]; },
                  {randn({3, 1}, gen, DType::Float64),
                   randn({3, 5}, gen, DType::Float64).requires_grad_()});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0] / in[1]; },
                  {randn({3, 5}, gen, DType::Float64),
                   uniform({5}, 0.5, 2, gen, DType::Float64).requires_grad_()});
  // The same tensor on both sides: d(x*x) = 2x accumulates from both uses.
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0] * in[0]; },
                  {randn({3, 5}, gen, DType::Float64).requires_grad_()});
}

TEST_CASE("elementwise: gradcheck of the unary ops", "[elementwise]") {
  Generator gen(22);
  Tensor x = randn({3, 5}, gen, DType::Float64).requires_grad_();
  Tensor pos = uniform({3, 5}, 0.2, 3, gen, DType::Float64).requires_grad_();
  Tensor odd = randn({2, 1, 7}, gen, DType::Float64).requires_grad_();
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return neg(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return exp(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return exp(in[0]); }, {odd});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return log(in[0]); }, {pos});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return sqrt(in[0]); }, {pos});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return tanh(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return tanh(in[0]); }, {odd});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {odd});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return scale(in[0], -2.5); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return pow(in[0], 2); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return pow(in[0], 3); }, {odd});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return pow(in[0], 0.5); }, {pos});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return pow(in[0], -1.5); }, {pos});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return pow(in[0], 0) * in[0]; }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return 2.0 - in[0]; }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return 2.0 / in[0] + in[0] * 3.0; }, {pos});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return (in[0] - 1.0) / 4.0 + 0.5; }, {x});
  // Non-contiguous inputs to the ops.
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return exp(in[0].t()) * in[1]; },
                  {x, randn({5, 3}, gen, DType::Float64).requires_grad_()});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return tanh(in[0].slice(1, 0, 5, 2)); }, {x});
}

TEST_CASE("elementwise: gradcheck of relu away from its kink; gradient 0 at exactly 0",
          "[elementwise]") {
  Generator gen(23);
  Tensor x = away_from_zero(randn({3, 5}, gen, DType::Float64));
  Tensor y = away_from_zero(randn({2, 1, 7}, gen, DType::Float64));
  for (double v : x.to_vector<double>()) REQUIRE(std::abs(v) >= 1e-2);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return relu(in[0]) * in[0]; }, {y});

  // At exactly 0 the gradient is 0 (as PyTorch); -0.0 too.
  Tensor z = from_vector<double>({-1, 0, -0.0, 2, 1e-300}).requires_grad_();
  relu(z).sum().backward();
  check_tensor(z.grad(), {5}, {0, 0, 0, 1, 1}, 0);
  Tensor zf = from_vector<float>({0, -3, 4}).requires_grad_();
  (relu(zf) * 5.0).sum().backward();
  check_tensor(zf.grad(), {3}, {0, 0, 5}, 0);
}

TEST_CASE("elementwise: gradcheck of masked_fill", "[elementwise]") {
  Generator gen(24);
  Tensor x = randn({2, 4, 4}, gen, DType::Float64).requires_grad_();
  Tensor positions = arange(4);
  Tensor mask = gt(positions.unsqueeze(0), positions.unsqueeze(1));
  CHECK_GRADCHECK(
      [mask](const std::vector<Tensor>& in) { return masked_fill(in[0], mask, -1e4) * in[0]; },
      {x});
}

TEST_CASE("elementwise: gradients by hand for a broadcast product", "[elementwise]") {
  // out[i, j] = a[i] * b[j]: d sum / d a[i] = sum_j b[j], d sum / d b[j] = sum_i a[i].
  Tensor a = from_vector<float>({1, 2, 3}, {3, 1}).requires_grad_();
  Tensor b = from_vector<float>({10, 20}, {1, 2}).requires_grad_();
  (a * b).sum().backward();
  check_tensor(a.grad(), {3, 1}, {30, 30, 30});
  check_tensor(b.grad(), {1, 2}, {6, 6});
  CHECK(a.grad().dtype() == DType::Float32);
}
