// docs/autograd.md is the teaching page: its examples, run here, must print what the page says
// (values, graphs, error messages). A failure means the page is no longer true: fix the page
// with the code.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "autograd/node.h"  // grad_fn() internals: node names, edges, what a node saved
#include "tinygrok.h"

using namespace tg;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;

namespace {

std::vector<std::string> input_names(const Node& node) {
  std::vector<std::string> names;
  for (const Edge& edge : node.next_edges) names.push_back(edge.node ? edge.node->name() : "-");
  return names;
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

std::vector<double> rounded(const Tensor& t, double scale) {
  std::vector<double> out;
  for (double v : t.to_vector<double>()) out.push_back(std::round(v * scale) / scale);
  return out;
}

}  // namespace

TEST_CASE("autograd.md section 2: (a*b + a).sum() and its graph", "[doc]") {
  Tensor a = from_vector<float>({1, 2, 3}).requires_grad_();
  Tensor b = from_vector<float>({4, 5, 6}).requires_grad_();
  Tensor y = (a * b + a).sum();
  CHECK(y.str() == "tensor(38, shape=[], dtype=float32, device=cpu, requires_grad)");
  const Node& sum = *y.grad_fn();
  CHECK(sum.name() == "SumBackward");
  CHECK_THAT(input_names(sum), Equals(std::vector<std::string>{"AddBackward"}));
  const Node& add = *sum.next_edges[0].node;
  CHECK_THAT(input_names(add), Equals(std::vector<std::string>{"MulBackward", "AccumulateGrad"}));
  CHECK_THAT(input_names(*add.next_edges[0].node),
             Equals(std::vector<std::string>{"AccumulateGrad", "AccumulateGrad"}));
  y.backward();
  CHECK(values(a.grad()) == std::vector<double>{5, 6, 7});
  CHECK(values(b.grad()) == std::vector<double>{1, 2, 3});
}

TEST_CASE("autograd.md section 3: a saved tensor written in place stops backward", "[doc]") {
  Tensor x = from_vector<double>({1, 2}).requires_grad_();
  Tensor w = from_vector<double>({3, 4});
  Tensor y = (x * w).sum();
  w.fill_(100);
  CHECK_THROWS_WITH(y.backward(),
                    "backward: MulBackward needs a float64 tensor of shape [2] that the forward "
                    "pass saved, but it has been written in place since (version 0 when saved, 1 "
                    "now); run the forward pass again after changing it, or change a clone()");
}

TEST_CASE("autograd.md section 4: cross-entropy's numbers and its two graphs", "[doc]") {
  CHECK(std::round(1e6 * cross_entropy(from_vector<float>({1000, 1001}, {1, 2}),
                                       from_vector<int64_t>({1}))
                             .item<double>()) == 313262);

  Tensor logits = from_vector<float>({1, 2, 3}, {1, 3}).requires_grad_();
  Tensor loss = cross_entropy(logits, from_vector<int64_t>({2}));
  CHECK(std::round(1e6 * loss.item<double>()) == 407606);
  // The mean with a gradient: one node, which saved dlogits [N, C].
  CHECK(loss.grad_fn()->name() == "CrossEntropyBackward");
  CHECK_THAT(input_names(*loss.grad_fn()), Equals(std::vector<std::string>{"AccumulateGrad"}));
  for (const Node::SavedVersion& saved : loss.grad_fn()->saved_versions)  // one per closure
    CHECK(saved.tensor.lock()->shape == Shape{1, 3});
  loss.backward();
  CHECK(rounded(logits.grad(), 1e6) == std::vector<double>{0.090031, 0.244728, -0.334759});

  // Per-row losses, then mean: MeanBackward -> CrossEntropyBackward, saving logits, targets and
  // the shifted log-sum-exp.
  Tensor rows = cross_entropy(logits, from_vector<int64_t>({2}), Reduction::None).mean();
  CHECK(rows.grad_fn()->name() == "MeanBackward");
  const Node& per_row = *rows.grad_fn()->next_edges[0].node;
  CHECK(per_row.name() == "CrossEntropyBackward");
  CHECK(per_row.saved_versions.size() == 3);

  // The composition of section 4 gives the same loss.
  Tensor z = from_vector<float>({1, 2, 3}, {1, 3});
  Tensor composed = -(log_softmax(z) * one_hot(from_vector<int64_t>({2}), 3)).sum({1});
  CHECK(std::round(1e6 * composed.item<double>()) == 407606);
}

TEST_CASE("autograd.md section 5: the diamond, sum_to, retain_graph and the freed graph",
          "[doc]") {
  Tensor x = from_vector<float>({1, 2}).requires_grad_();
  Tensor h = x * x;
  Tensor y = (h + h * 3.0).sum();
  y.backward();
  CHECK(values(x.grad()) == std::vector<double>{8, 16});

  Tensor bias = from_vector<float>({0, 0, 0}).requires_grad_();
  (ones({2, 3}) + bias).sum().backward();
  CHECK(values(bias.grad()) == std::vector<double>{2, 2, 2});

  Tensor a = from_vector<float>({1, 2, 3}).requires_grad_();
  Tensor s = (a * a).sum();
  s.backward(Tensor(), /*retain_graph=*/true);
  s.backward(Tensor(), /*retain_graph=*/true);
  CHECK(values(a.grad()) == std::vector<double>{4, 8, 12});

  Tensor freed = (a * a).sum();
  freed.backward();
  CHECK_THROWS_WITH(freed.backward(),
                    "backward: SumBackward was already run by an earlier backward() that freed "
                    "the graph; pass retain_graph=true to the first backward() to run backward "
                    "twice");
}

TEST_CASE("autograd.md section 6: gradcheck of cross-entropy passes and names its worst entry",
          "[doc]") {
  Generator gen(1);
  Tensor logits = randn({4, 5}, gen, DType::Float64).requires_grad_();
  Tensor targets = from_vector<int64_t>({0, 3, 4, 1});
  for (Reduction reduction : {Reduction::None, Reduction::Mean}) {
    GradcheckResult r = gradcheck(
        [reduction](const std::vector<Tensor>& in) {
          return cross_entropy(in[0], in[1], reduction);
        },
        {logits, targets});
    CHECK(r.passed);
    CHECK_THAT(r.report, StartsWith("gradcheck passed: worst at input 0 element "));
  }
}

TEST_CASE("autograd.md sections 7 and 8: no recording under NoGradGuard; a long chain",
          "[doc]") {
  Tensor a = from_vector<float>({1, 2}).requires_grad_();
  {
    NoGradGuard no_grad;
    CHECK_FALSE((a * 2.0).requires_grad());
  }
  CHECK((a * 2.0).requires_grad());

  Tensor x = scalar(2.0).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y * 1.0;
  y.backward();
  CHECK(x.grad().item<double>() == 1);
}

TEST_CASE("autograd.md section 8 1/2: the fused linear saves what the composition saves",
          "[doc]") {
  Generator gen(2);
  Tensor x = randn({4, 3}, gen).requires_grad_();
  Tensor W = randn({3, 5}, gen).requires_grad_();
  Tensor b = randn({5}, gen).requires_grad_();
  Tensor fused = linear(x, W, b, Activation::Relu);
  CHECK(fused.grad_fn()->name() == "LinearBackward");
  CHECK(fused.grad_fn()->saved_versions.size() == 3);  // x, W and the output

  Tensor composed = relu(matmul(x, W) + b);
  size_t saved = 0;  // relu: its output; add: nothing; matmul: x and W
  for (const Node* node = composed.grad_fn().get(); node && node->name() != "AccumulateGrad";
       node = node->next_edges[0].node.get())
    saved += node->saved_versions.size();
  CHECK(saved == 3);
}
