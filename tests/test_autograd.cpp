// Autograd semantics: accumulation, shared subexpressions, gradients a node adds itself, grad
// mode, detach, retain_graph, long chains, explicit upstream gradients, and gradcheck itself.
#include <catch2/catch.hpp>

#include <cmath>
#include <thread>
#include <utility>

#include "autograd/node.h"  // grad_fn() internals: node names, edges, released()
#include "tinygrok.h"

using namespace tg;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

std::vector<double> grad_of(const Tensor& leaf) {
  REQUIRE(leaf.grad().defined());
  return leaf.grad().to_vector<double>();
}

Tensor leaf64(const std::vector<double>& values, const Shape& shape = {}) {
  return from_vector<double>(values, shape).requires_grad_();
}

}  // namespace

TEST_CASE("autograd: gradients accumulate across backward calls", "[autograd]") {
  Tensor x = leaf64({1, 2, 3});
  (x * x).sum().backward();
  CHECK(grad_of(x) == std::vector<double>{2, 4, 6});
  (x * 3.0).sum().backward();
  CHECK(grad_of(x) == std::vector<double>{5, 7, 9});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  x.sum().backward();
  CHECK(grad_of(x) == std::vector<double>{1, 1, 1});
}

TEST_CASE("autograd: the accumulated gradient is owned, not aliased", "[autograd]") {
  Tensor x = leaf64({1, 2});
  const Tensor upstream = from_vector<double>({5, 6});
  (x * 1.0).backward(upstream);
  {
    NoGradGuard guard;
    upstream.detach().fill_(0);  // must not reach x.grad
  }
  CHECK(grad_of(x) == std::vector<double>{5, 6});
  CHECK(x.grad().storage() != upstream.storage());

  // A leaf whose gradient arrives as a broadcast view still gets a dense gradient.
  Tensor b = leaf64({1, 2, 3});
  (b.expand({4, 3}) * 1.0).sum().backward();
  CHECK(b.grad().is_contiguous());
  CHECK(grad_of(b) == std::vector<double>{4, 4, 4});
}

TEST_CASE("autograd: leaves never share a gradient that an op passed to both", "[autograd]") {
  // Leaves take a fresh gradient as it is (no copy); add's backward passes one gradient to both
  // its inputs, so at least one of them must copy it.
  Tensor x = leaf64({1, 2}), y = leaf64({3, 4});
  const Tensor c = from_vector<double>({5, 6});
  ((x + y) * c).sum().backward();
  CHECK(x.grad().storage() != y.grad().storage());
  {
    NoGradGuard guard;
    x.grad().detach().fill_(0);  // must not reach y.grad
  }
  CHECK(grad_of(y) == std::vector<double>{5, 6});

  // A view of a gradient that something else also holds is copied too.
  Tensor a = leaf64({1, 2, 3, 4}), b = leaf64({1, 2, 3, 4}, {2, 2});
  ((a.reshape({2, 2}) + b) * from_vector<double>({1, 2, 3, 4}, {2, 2})).sum().backward();
  CHECK(a.grad().storage() != b.grad().storage());
  CHECK(grad_of(a) == std::vector<double>{1, 2, 3, 4});
  CHECK(grad_of(b) == std::vector<double>{1, 2, 3, 4});
}

TEST_CASE("autograd: a root that knows its gradients for the seed 1 is not given one",
          "[autograd]") {
  // A scalar op whose backward at 1 returns a marker (7) instead of what apply() computes.
  Tensor x = leaf64({1, 2});
  const auto knowing_sum = [](const Tensor& in) {
    NoGradGuard no_grad;
    return record(
        sum(in), "KnowingSumBackward",
        [shape = in.shape()](const Tensor& g) -> std::vector<Tensor> { return {g.expand(shape)}; },
        [shape = in.shape()]() -> std::vector<Tensor> {
          return {full(shape, 7.0, DType::Float64)};
        },
        {&in});
  };
  knowing_sum(x).backward();
  CHECK(grad_of(x) == std::vector<double>{7, 7});
  x.zero_grad();
  knowing_sum(x).backward(ones({}, DType::Float64));  // an explicit seed goes to apply()
  CHECK(grad_of(x) == std::vector<double>{1, 1});

  // The loss takes it: its seed-1 gradients are the bits backward(1) gives.
  Generator gen(3);
  Tensor logits = randn({5, 7}, gen).requires_grad_();
  const Tensor targets = from_vector<int64_t>({0, 6, 3, 3, 1});
  const Tensor loss = cross_entropy(logits, targets);
  CHECK(loss.grad_fn()->knows_unit_seed_gradients());
  loss.backward({}, /*retain_graph=*/true);
  const std::vector<float> implied = logits.grad().to_vector<float>();
  logits.zero_grad();
  loss.backward(ones({}));
  CHECK(logits.grad().to_vector<float>() == implied);
}

TEST_CASE("autograd: shared subexpressions sum their gradients", "[autograd]") {
  SECTION("y = x*x + x") {
    Tensor x = leaf64({-1, 0.5, 3});
    (x * x + x).sum().backward();
    CHECK(grad_of(x) == std::vector<double>{-1, 2, 7});  // 2x + 1
  }
  SECTION("diamond a -> b, a -> c, (b, c) -> d") {
    Tensor x = leaf64({2, -3});
    Tensor a = x * x;          // da/dx = 2x
    Tensor b = a * 3.0;        // db/da = 3
    Tensor c = a.exp();        // dc/da = exp(a)
    Tensor d = b * c;          // dd/da = 3c + b exp(a) = 3 exp(a) (1 + a)
    d.sum().backward();
    const std::vector<double> g = grad_of(x);
    for (size_t i = 0; i < 2; ++i) {
      const double xv = i == 0 ? 2 : -3, av = xv * xv;
      CHECK(g[i] == Approx(3 * std::exp(av) * (1 + av) * 2 * xv).epsilon(1e-12));
    }
  }
  SECTION("a non-leaf used by two consumers runs its backward once") {
    Tensor x = leaf64({1, 2});
    Tensor h = x * 2.0;
    Tensor loss = (h + h * h).sum();  // dL/dh = 1 + 2h, dh/dx = 2
    loss.backward();
    CHECK(grad_of(x) == std::vector<double>{10, 18});
  }
}

TEST_CASE("autograd: a leaf used many times accumulates every use", "[autograd]") {
  Tensor x = scalar(0.5, DType::Float64).requires_grad_();
  Tensor total = x;
  for (int i = 0; i < 50; ++i) total = total + x * static_cast<double>(i);
  total.backward();
  CHECK(grad_of(x)[0] == 1 + 49 * 50 / 2);
  CHECK(x.grad().shape().empty());
}

TEST_CASE("autograd: EnableGradGuard records inside a NoGradGuard, then restores it",
          "[autograd]") {
  Tensor x = leaf64({1, 2});
  NoGradGuard no_grad;
  {
    EnableGradGuard grad_on;
    CHECK(GradMode::enabled());
    const Tensor y = (x * 3.0).sum();
    CHECK(y.grad_fn() != nullptr);
    y.backward();
  }
  CHECK_FALSE(GradMode::enabled());
  CHECK(grad_of(x) == std::vector<double>{3, 3});
  CHECK((x * 3.0).grad_fn() == nullptr);
}

TEST_CASE("autograd: NoGradGuard records nothing and restores the previous mode", "[autograd]") {
  Tensor x = leaf64({1, 2});
  CHECK(GradMode::enabled());
  {
    NoGradGuard outer;
    CHECK_FALSE(GradMode::enabled());
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK(y.is_leaf());
    {
      NoGradGuard inner;
      CHECK_FALSE(GradMode::enabled());
    }
    CHECK_FALSE(GradMode::enabled());  // the inner guard restores "off", not "on"
  }
  CHECK(GradMode::enabled());
  Tensor z = x * 2.0;
  CHECK(z.requires_grad());
  CHECK(z.grad_fn() != nullptr);
  CHECK(z.grad_fn()->name() == "MulBackward");

  GradMode::set_enabled(false);
  {
    NoGradGuard guard;
  }
  CHECK_FALSE(GradMode::enabled());  // restored to the value it found
  GradMode::set_enabled(true);
}

TEST_CASE("autograd: grad mode is per thread", "[autograd]") {
  Tensor x = leaf64({1, 2});
  NoGradGuard guard;
  bool other_enabled = false, other_recorded = false;
  std::thread other([&] {
    other_enabled = GradMode::enabled();
    other_recorded = (x * 2.0).grad_fn() != nullptr;
  });
  other.join();
  CHECK(other_enabled);
  CHECK(other_recorded);
  CHECK_FALSE(GradMode::enabled());
  CHECK((x * 2.0).grad_fn() == nullptr);

  // A guard in another thread does not switch this one off.
  GradMode::set_enabled(true);
  std::thread guarded([] { NoGradGuard g; });
  guarded.join();
  CHECK(GradMode::enabled());
  GradMode::set_enabled(false);  // as the guard expects to find it
}

TEST_CASE("autograd: detach cuts the graph but shares the data", "[autograd]") {
  Tensor x = leaf64({1, 2, 3});
  Tensor y = x * 2.0;
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.storage() == y.storage());
  CHECK(x.detach().storage() == x.storage());

  d.select(0, 0).fill_(100);  // allowed: d does not require grad
  CHECK(y.to_vector<double>()[0] == 100);

  // Gradient flows only through the attached path: d(y * d)/dx = 2 * d.
  (y * d).sum().backward();
  CHECK(grad_of(x) == std::vector<double>{200, 8, 12});
}

TEST_CASE("autograd: requires_grad propagates through ops", "[autograd]") {
  Tensor w = leaf64({1, 2});
  const Tensor c = from_vector<double>({3, 4});
  CHECK(w.requires_grad());
  CHECK(w.is_leaf());
  CHECK_FALSE(c.requires_grad());
  CHECK_FALSE((c * c).requires_grad());
  CHECK((c * c).grad_fn() == nullptr);

  const Tensor y = c * w;
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  const Tensor z = y.reshape({2, 1}).t().sum({1}).exp();
  CHECK(z.requires_grad());
  CHECK(z.grad_fn()->name() == "ExpBackward");
  CHECK(z.grad_fn()->next_edges.size() == 1);
  CHECK(z.grad_fn()->next_edges[0].node->name() == "SumBackward");

  // Integer results (comparisons on floats are float; argmax is int64) never require grad.
  CHECK_FALSE(argmax(w, 0).requires_grad());
  CHECK_FALSE(w.to(DType::Int64).requires_grad());

  w.requires_grad_(false);
  CHECK_FALSE((c * w).requires_grad());
}

TEST_CASE("autograd: retain_graph allows a second backward that doubles the grads", "[autograd]") {
  Tensor x = leaf64({1, -2});
  Tensor w = leaf64({3, 4});
  const Tensor loss = (x * w).exp().sum();
  loss.backward(Tensor(), /*retain_graph=*/true);
  const std::vector<double> gx = grad_of(x), gw = grad_of(w);
  loss.backward(Tensor(), /*retain_graph=*/true);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(grad_of(x)[i] == Approx(2 * gx[i]).epsilon(1e-14));
    CHECK(grad_of(w)[i] == Approx(2 * gw[i]).epsilon(1e-14));
  }
  loss.backward();  // a third, freeing the graph
  CHECK(grad_of(x)[0] == Approx(3 * gx[0]).epsilon(1e-14));
}

TEST_CASE("autograd: a second backward without retain_graph is an error", "[autograd]") {
  Tensor x = leaf64({1, 2});
  const Tensor loss = (x * x).sum();
  loss.backward();
  const std::vector<double> once = grad_of(x);
  CHECK_THROWS_AS(loss.backward(), Error);
  CHECK_THROWS_WITH(loss.backward(), StartsWith("backward: ") && Contains("retain_graph"));
  CHECK(grad_of(x) == once);  // the failed call changed nothing

  // Saved tensors are freed: the node keeps no copy of x after backward.
  Tensor y = leaf64({5});
  const Tensor sq = y * y;
  sq.sum().backward();
  CHECK(sq.grad_fn()->released());
}

TEST_CASE("autograd: a backward refuses a saved tensor written in place since", "[autograd]") {
  // w does not require grad, but x's gradient is w: a backward that read the new values would
  // return a gradient of a function the forward never computed.
  Tensor x = leaf64({1, 2});
  Tensor w = from_vector<double>({3, 4});
  const Tensor y = (x * w).sum();
  w.fill_(100);
  CHECK_THROWS_WITH(y.backward(), StartsWith("backward: MulBackward needs a float64 tensor of "
                                             "shape [2] that the forward pass saved") &&
                                      Contains("(version 0 when saved, 1 now)"));
  CHECK_FALSE(x.grad().defined());  // nothing was accumulated

  // Through a detached alias of an output the backward reads (exp saves its output), and by
  // an optimiser's step on a parameter the graph saved.
  Tensor a = leaf64({0.5});
  const Tensor e = a.exp();
  e.detach().add_(ones({1}, DType::Float64));
  CHECK_THROWS_WITH(e.sum().backward(), StartsWith("backward: ExpBackward needs"));
  Tensor p = leaf64({2, 3});
  optim::SGD sgd({p}, 0.1);
  const Tensor loss = (p * p).sum();
  loss.backward(Tensor(), /*retain_graph=*/true);
  sgd.step();
  CHECK_THROWS_WITH(loss.backward(), StartsWith("backward: MulBackward needs"));

  // Writes before the forward, or to tensors no backward reads, are fine.
  Tensor v = from_vector<double>({3, 4});
  v.fill_(2);
  Tensor u = from_vector<double>({1, 1});
  const Tensor z = (x * v + u).sum();
  u.fill_(7);  // add saves nothing
  z.backward();
  CHECK(grad_of(x) == std::vector<double>{2, 2});
}

TEST_CASE("autograd: a 100,000-node chain runs backward and is destroyed iteratively",
          "[autograd]") {
  constexpr int kLength = 100000;
  SECTION("backward through the chain") {
    Tensor x = scalar(1.0, DType::Float64).requires_grad_();
    const Tensor factor = scalar(1.0001, DType::Float64);
    Tensor y = x;
    for (int i = 0; i < kLength; ++i) y = y * factor;
    CHECK(y.item() == Approx(std::pow(1.0001, kLength)).epsilon(1e-9));
    y.backward();
    CHECK(grad_of(x)[0] == Approx(std::pow(1.0001, kLength)).epsilon(1e-9));
    y = Tensor();  // releases the (already freed) chain
  }
  SECTION("destroyed without backward") {
    Tensor x = leaf64({1.0, 2.0});
    const Tensor zero = scalar(0, DType::Float64);
    Tensor y = x;
    for (int i = 0; i < kLength; ++i) y = y + zero;
    CHECK(y.grad_fn() != nullptr);
    y = Tensor();  // the whole chain is freed here, and must not recurse 100,000 deep
    CHECK(x.requires_grad());
  }
}

TEST_CASE("autograd: backward with an explicit upstream gradient", "[autograd]") {
  Tensor x = leaf64({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor y = x * x;
  y.backward(from_vector<double>({1, 0, -1, 2, 0.5, 0}, {2, 3}));
  CHECK(grad_of(x) == std::vector<double>{2, 0, -6, 16, 5, 0});
  CHECK(x.grad().shape() == Shape{2, 3});

  // The upstream gradient may be any strided view, here a broadcast row.
  x.zero_grad();
  (x * 3.0).backward(from_vector<double>({1, 2, 3}).expand({2, 3}));
  CHECK(grad_of(x) == std::vector<double>{3, 6, 9, 3, 6, 9});

  // On a scalar, the upstream gradient scales the result.
  Tensor w = leaf64({1, 2});
  w.sum().backward(scalar(3, DType::Float64));
  CHECK(grad_of(w) == std::vector<double>{3, 3});

  // backward() on a leaf itself accumulates the gradient it is given.
  Tensor leaf = leaf64({1, 2});
  leaf.backward(from_vector<double>({4, 5}));
  CHECK(grad_of(leaf) == std::vector<double>{4, 5});
}

TEST_CASE("autograd: gradients go only to inputs that require grad", "[autograd]") {
  Tensor a = leaf64({1, 2});
  Tensor b = from_vector<double>({3, 4});
  (a * b).sum().backward();
  CHECK(grad_of(a) == std::vector<double>{3, 4});
  CHECK_FALSE(b.grad().defined());

  Tensor m = leaf64({1, 2, 3, 4}, {2, 2});
  Tensor n = from_vector<double>({1, 0, 0, 1}, {2, 2});
  matmul(n, m).sum().backward();
  CHECK_FALSE(n.grad().defined());
  CHECK(grad_of(m) == std::vector<double>{1, 1, 1, 1});

  // An input that requires grad but is not reached (detached) gets nothing.
  Tensor p = leaf64({1});
  Tensor q = leaf64({1});
  (p * q.detach()).sum().backward();
  CHECK(p.grad().defined());
  CHECK_FALSE(q.grad().defined());
}

TEST_CASE("autograd: a leaf's gradient has the leaf's dtype and shape", "[autograd]") {
  Tensor f = ones({3, 1}).requires_grad_();
  Tensor d = ones({4, 3}, DType::Float64);
  // f is broadcast to [4, 3] after a conversion to float64: its gradient is summed back to [3, 1]
  // and converted back to float32.
  (f.to(DType::Float64).t() * d).sum().backward();
  REQUIRE(f.grad().defined());
  CHECK(f.grad().dtype() == DType::Float32);
  CHECK(f.grad().shape() == Shape{3, 1});
  CHECK(f.grad().to_vector<float>() == std::vector<float>{4, 4, 4});

  Tensor s = scalar(2, DType::Float64).requires_grad_();
  (s * ones({5}, DType::Float64)).sum().backward();
  CHECK(s.grad().dtype() == DType::Float64);
  CHECK(s.grad().shape().empty());
  CHECK(s.grad().item() == 5);
}

TEST_CASE("autograd: a backward that returns a misshapen gradient is caught", "[autograd]") {
  // A deliberately broken op: its backward returns [5] for an input of shape [2, 3]. Without the
  // engine's check this would broadcast silently into the accumulation.
  Tensor x = ones({2, 3}).requires_grad_();
  Tensor y = record(ones({2, 3}), "BrokenBackward",
                    [](const Tensor&) -> std::vector<Tensor> { return {ones({5})}; }, {&x});
  REQUIRE_THROWS_WITH(y.sum().backward(),
                      Catch::Matchers::Contains("BrokenBackward returned a gradient [5] float32") &&
                          Catch::Matchers::Contains("for input 0 of shape [2, 3] float32"));
}

namespace {

// y = 2x, as an op whose backward may add x's pending gradient itself (Node::apply_adding):
// when `take` it adds pending[0] to its 2g and resets it; `seen` records what it was offered.
Tensor doubled(const Tensor& x, bool take, std::vector<double>* seen) {
  Tensor y = x.detach() * 2.0;
  return record_adding(
      y, "DoubledBackward",
      [take, seen](const Tensor& g, std::vector<Tensor>& pending) -> std::vector<Tensor> {
        if (seen)
          *seen = pending[0].defined() ? pending[0].to_vector<double>() : std::vector<double>();
        Tensor dx = g * 2.0;
        if (take && pending[0].defined()) dx = std::exchange(pending[0], Tensor()) + dx;
        return {dx};
      },
      {&x});
}

}  // namespace

TEST_CASE("autograd: a node may add the gradient pending for its input itself",
          "[autograd]") {
  for (bool take : {true, false}) {
    INFO((take ? "the node adds it" : "the node leaves it to the engine"));
    // h feeds doubled(h) and 3h; the engine's ready stack runs the add's last input, 3h, first,
    // so doubled is offered 3h's gradient as pending. Either way x.grad() = d(2h + 3h)/dx = 10x.
    Tensor x = leaf64({1, 2});
    std::vector<double> seen;
    const Tensor h = x * x;
    const Tensor y = (doubled(h, take, &seen) + h * 3.0).sum();
    y.backward();
    CHECK(seen == std::vector<double>{3, 3});
    CHECK(grad_of(x) == std::vector<double>{10, 20});
  }
  // Nothing pending: doubled(x) is x's only consumer (and a leaf's sink has nothing yet).
  Tensor x = leaf64({1, 2});
  std::vector<double> seen = {-1};
  doubled(x * 1.0, true, &seen).sum().backward();
  CHECK(seen.empty());
  CHECK(grad_of(x) == std::vector<double>{2, 2});
}

TEST_CASE("autograd: a node that takes a pending gradient must return one", "[autograd]") {
  Tensor x = ones({2}).requires_grad_();
  const Tensor h = x * 1.0;
  Tensor lost = record_adding(
      h.detach() * 1.0, "LosingBackward",
      [](const Tensor&, std::vector<Tensor>& pending) -> std::vector<Tensor> {
        pending[0] = Tensor();  // takes it, and returns nothing for that input
        return {Tensor()};
      },
      {&h});
  REQUIRE_THROWS_WITH((h + lost).sum().backward(),
                      Contains("LosingBackward took input 0's pending gradient but returned none "
                               "for it"));
}

TEST_CASE("autograd: backward on a leaf stores a plain gradient", "[autograd]") {
  // The upstream gradient itself requires grad: the leaf's .grad must not join its graph.
  Tensor x = ones({3}).requires_grad_();
  Tensor upstream = full({3}, 2.0).requires_grad_();
  x.backward(upstream);
  x.backward(upstream);
  CHECK(x.grad().to_vector<float>() == std::vector<float>{4, 4, 4});
  CHECK(x.grad().grad_fn() == nullptr);
  CHECK_FALSE(x.grad().requires_grad());
}

TEST_CASE("autograd: gradcheck passes a correct function", "[autograd]") {
  Generator gen(4);
  Tensor a = randn({3, 4}, gen, DType::Float64).requires_grad_();
  Tensor b = randn({4, 2}, gen, DType::Float64).requires_grad_();
  const Tensor c = randn({2}, gen, DType::Float64);  // held constant
  const GradcheckResult r = gradcheck(
      [](const std::vector<Tensor>& in) { return (matmul(in[0], in[1]) * in[2]).tanh(); },
      {a, b, c});
  INFO(r.report);
  CHECK(r.passed);
  CHECK(r.worst_ratio <= 1);
  CHECK_THAT(r.report, StartsWith("gradcheck passed"));
}

TEST_CASE("autograd: gradcheck fails a function with a wrong gradient", "[autograd]") {
  // f(x) = x * detach(x): the value is x^2 but autograd sees only one factor, so its gradient is
  // x instead of 2x. The error grows with |x|, so the worst element is the largest, element 1.
  Tensor x = from_vector<double>({0.5, -3.0, 1.0}).requires_grad_();
  const GradcheckResult r = gradcheck(
      [](const std::vector<Tensor>& in) { return in[0] * in[0].detach(); }, {x});
  INFO(r.report);
  CHECK_FALSE(r.passed);
  CHECK(r.worst_ratio > 1);
  CHECK(r.input == 0);
  CHECK(r.element == 1);
  CHECK(r.output == 1);
  CHECK(r.analytic == Approx(-3.0));
  CHECK(r.numeric == Approx(-6.0).epsilon(1e-6));
  CHECK_THAT(r.report, StartsWith("gradcheck FAILED") && Contains("element 1") &&
                           Contains("output 1"));

  // A missing term in a function of two inputs is blamed on the right input.
  Tensor u = from_vector<double>({1.0, 2.0}).requires_grad_();
  Tensor v = from_vector<double>({0.5, 4.0}).requires_grad_();
  const GradcheckResult r2 = gradcheck(
      [](const std::vector<Tensor>& in) { return (in[0] * in[1].detach()).sum() + in[0].sum(); },
      {u, v});
  CHECK_FALSE(r2.passed);
  CHECK(r2.input == 1);
  CHECK(r2.analytic == 0);
  CHECK(r2.numeric == Approx(2.0).epsilon(1e-6));  // d/dv_1 of u . v is u_1 = 2
  CHECK(r2.element == 1);
}

TEST_CASE("autograd: gradcheck treats a NaN gradient as a failure", "[autograd]") {
  // sqrt of a negative number: value, gradient and differences are all NaN, and every comparison
  // with NaN is false, so a check written as "fail when error > tolerance" would pass it.
  Tensor x = from_vector<double>({-1.0}).requires_grad_();
  const GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return in[0].sqrt(); },
                                      {x});
  CHECK_FALSE(r.passed);
  CHECK(std::isnan(r.analytic));
  CHECK_THAT(r.report, StartsWith("gradcheck FAILED"));
}

TEST_CASE("autograd: gradcheck rejects float32 inputs and float32 functions", "[autograd]") {
  Tensor f = ones({2}).requires_grad_();
  const auto identity = [](const std::vector<Tensor>& in) { return in[0] * 2.0; };
  CHECK_THROWS_AS(gradcheck(identity, {f}), Error);
  CHECK_THROWS_WITH(gradcheck(identity, {f}), StartsWith("gradcheck: input 0 is float32"));

  Tensor d = ones({2}, DType::Float64).requires_grad_();
  const auto to_float = [](const std::vector<Tensor>& in) { return in[0].to(DType::Float32); };
  CHECK_THROWS_WITH(gradcheck(to_float, {d}), StartsWith("gradcheck: f returned float32"));
}
