// Error tests: every failure is a tg::Error whose message starts with the op that failed and
// names the shapes involved.
#include <catch2/catch.hpp>

#include "test_support.h"

#include <cmath>
#include <thread>

#include "tinygrok.h"

using namespace tg;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;

TEST_CASE("errors: matmul inner dimension mismatch", "[errors]") {
  const Tensor a = zeros({3, 4}), b = zeros({5, 6});
  REQUIRE_TG_ERROR(matmul(a, b), Equals("matmul: [3, 4] @ [5, 6]: inner dimensions differ (4 vs 5)"));
  // 1-D operands report their own shapes, not the promoted ones.
  REQUIRE_TG_ERROR(matmul(zeros({4}), zeros({5, 2})),
                   Equals("matmul: [4] @ [5, 2]: inner dimensions differ (4 vs 5)"));
  // Batch axes that cannot broadcast.
  REQUIRE_TG_ERROR(matmul(zeros({2, 3, 4}), zeros({3, 4, 5})),
                   StartsWith("matmul: [2, 3, 4] @ [3, 4, 5]: batch dimensions") &&
                       Contains("(2 vs 3)"));
  REQUIRE_TG_ERROR(matmul(zeros({2}, DType::Int64), zeros({2}, DType::Int64)),
                   StartsWith("matmul:") && Contains("int64") && Contains("[2]"));
}

TEST_CASE("errors: broadcast failure in add", "[errors]") {
  const Tensor a = zeros({2, 3}), b = zeros({4});
  REQUIRE_TG_ERROR(add(a, b), StartsWith("add: ") && Contains("[2, 3]") && Contains("[4]") &&
                                  Contains("cannot be broadcast"));
  REQUIRE_TG_ERROR(a * zeros({3, 2}), StartsWith("mul: ") && Contains("[2, 3]") &&
                                          Contains("[3, 2]"));
  REQUIRE_TG_ERROR(ones({2, 3}).expand({4, 3}),
                   StartsWith("expand: ") && Contains("[2, 3] -> [4, 3]"));
  // Negative sizes are refused, not turned into a tensor with a negative element count.
  REQUIRE_TG_ERROR(ones({1}).expand({-1}), StartsWith("expand: [1] -> [-1]"));
  REQUIRE_TG_ERROR(ones({3}).expand({-2, 3}), StartsWith("expand: [3] -> [-2, 3]"));
}

TEST_CASE("errors: dtype mismatch between float32 and float64", "[errors]") {
  const Tensor a = zeros({2}), b = zeros({2}, DType::Float64);
  REQUIRE_TG_ERROR(a + b, StartsWith("add: ") && Contains("[2] float32") &&
                              Contains("[2] float64") && Contains("dtypes differ"));
  REQUIRE_TG_ERROR(matmul(zeros({2, 2}), zeros({2, 2}, DType::Float64)),
                   StartsWith("matmul: ") && Contains("dtypes differ"));
}

TEST_CASE("errors: reshape and view to the wrong element count", "[errors]") {
  const Tensor a = zeros({2, 3});
  REQUIRE_TG_ERROR(a.reshape({4, 2}),
                   Equals("reshape: [2, 3] -> [4, 2]: 6 elements do not fit 8"));
  REQUIRE_TG_ERROR(a.reshape({4, -1}), StartsWith("reshape: [2, 3] -> [4, -1]"));
  REQUIRE_TG_ERROR(a.reshape({-1, -1}), StartsWith("reshape: [2, 3] -> [-1, -1]"));
  REQUIRE_TG_ERROR(a.view({7}), StartsWith("view: [2, 3] -> [7]"));
  REQUIRE_TG_ERROR(a.t().view({6}), StartsWith("view: [3, 2]") && Contains("not contiguous"));
}

TEST_CASE("errors: bad axis for sum, softmax and the views", "[errors]") {
  const Tensor a = zeros({2, 3});
  REQUIRE_TG_ERROR(a.sum({2}), StartsWith("sum: ") && Contains("axis 2") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(sum(a, {-3}), StartsWith("sum: ") && Contains("axis -3") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(sum(a, {1, -1}), StartsWith("sum: ") && Contains("repeats"));
  REQUIRE_TG_ERROR(mean(a, {5}), StartsWith("mean: ") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(max(a, {5}), StartsWith("max: ") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(argmax(a, 2), StartsWith("argmax: ") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(softmax(a, 2), StartsWith("softmax: ") && Contains("axis 2") &&
                                      Contains("[2, 3]"));
  REQUIRE_TG_ERROR(log_softmax(a, -3), StartsWith("log_softmax: ") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(a.transpose(0, 2), StartsWith("transpose: ") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(a.slice(2, 0, 1), StartsWith("slice: ") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(a.select(1, 3), StartsWith("select: index 3") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(a.squeeze(0), StartsWith("squeeze: ") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(a.unsqueeze(4), StartsWith("unsqueeze: ") && Contains("[2, 3]"));
}

TEST_CASE("errors: permute with a repeated or missing axis", "[errors]") {
  const Tensor a = zeros({2, 3, 4});
  REQUIRE_TG_ERROR(a.permute({0, 2, 0}), StartsWith("permute: [2, 3, 4]") &&
                                             Contains("[0, 2, 0]") && Contains("repeats axis 0"));
  REQUIRE_TG_ERROR(a.permute({0, -1, 2}), StartsWith("permute: [2, 3, 4]") &&
                                              Contains("repeats axis 2"));
  REQUIRE_TG_ERROR(a.permute({0, 1}), StartsWith("permute: [2, 3, 4]"));
}

TEST_CASE("errors: cross_entropy with bad targets", "[errors]") {
  const Tensor logits = zeros({2, 3});
  REQUIRE_TG_ERROR(cross_entropy(logits, from_vector<int64_t>({0, 3})),
                   StartsWith("cross_entropy: target 3 at row 1") && Contains("[0, 3)"));
  REQUIRE_TG_ERROR(cross_entropy(logits, from_vector<int64_t>({-1, 0})),
                   StartsWith("cross_entropy: target -1 at row 0"));
  REQUIRE_TG_ERROR(cross_entropy(logits, from_vector<float>({0, 1})),
                   StartsWith("cross_entropy: ") && Contains("int64") && Contains("float32") &&
                       Contains("[2]"));
  REQUIRE_TG_ERROR(cross_entropy(logits, from_vector<int64_t>({0, 1, 2})),
                   StartsWith("cross_entropy: ") && Contains("[2, 3]") && Contains("[3]"));
  REQUIRE_TG_ERROR(cross_entropy(zeros({6}), from_vector<int64_t>({0})),
                   StartsWith("cross_entropy: logits [6]"));
}

TEST_CASE("errors: embedding index out of range or not int64", "[errors]") {
  const Tensor table = zeros({5, 2});
  REQUIRE_TG_ERROR(embedding(table, from_vector<int64_t>({1, 5})),
                   StartsWith("embedding: index 5 at position 1") && Contains("5 table rows"));
  REQUIRE_TG_ERROR(embedding(table, from_vector<int64_t>({-2})),
                   StartsWith("embedding: index -2"));
  REQUIRE_TG_ERROR(embedding(table, from_vector<float>({1})),
                   StartsWith("embedding: index must be int64") && Contains("[1]"));
  REQUIRE_TG_ERROR(one_hot(from_vector<int64_t>({4}), 3), StartsWith("one_hot: index 4"));
}

TEST_CASE("errors: item() on a tensor of more than one element", "[errors]") {
  REQUIRE_TG_ERROR(zeros({2, 3}).item(), Equals("item: tensor of shape [2, 3] has 6 elements, not 1"));
  REQUIRE_TG_ERROR(zeros({0}).item(), StartsWith("item: tensor of shape [0]"));
}

TEST_CASE("errors: backward on a non-scalar without a gradient", "[errors]") {
  Tensor x = ones({3}).requires_grad_();
  const Tensor y = x * 2.0;
  REQUIRE_TG_ERROR(y.backward(), StartsWith("backward: tensor of shape [3] is not a scalar"));
  REQUIRE_TG_ERROR(y.backward(ones({2})), StartsWith("backward: gradient of shape [2]") &&
                                              Contains("[3]"));
  REQUIRE_TG_ERROR(y.backward(ones({3}, DType::Float64)),
                   StartsWith("backward: gradient is float64, tensor is float32"));
  CHECK_FALSE(x.grad().defined());  // nothing ran
}

TEST_CASE("errors: backward on a tensor that does not require grad", "[errors]") {
  const Tensor x = ones({2});
  REQUIRE_TG_ERROR(x.sum().backward(),
                   StartsWith("backward: tensor of shape []") && Contains("does not require grad"));
  Tensor w = ones({2}).requires_grad_();
  NoGradGuard guard;  // computed without recording: no graph to run
  REQUIRE_TG_ERROR((w * 2.0).sum().backward(), Contains("does not require grad"));
}

TEST_CASE("errors: requires_grad_ on int64 and on non-leaves", "[errors]") {
  Tensor i = zeros({2}, DType::Int64);
  REQUIRE_TG_ERROR(i.requires_grad_(), StartsWith("requires_grad_: int64") && Contains("[2]"));
  i.requires_grad_(false);  // turning it off is always fine
  CHECK_FALSE(i.requires_grad());

  Tensor x = ones({2}).requires_grad_();
  Tensor y = x * 2.0;
  REQUIRE_TG_ERROR(y.requires_grad_(false),
                   StartsWith("requires_grad_: only leaf tensors") && Contains("[2]"));
}

TEST_CASE("errors: use of an undefined tensor", "[errors]") {
  const Tensor undefined;
  CHECK_FALSE(undefined.defined());
  REQUIRE_TG_ERROR(undefined.shape(), Equals("tensor: use of an undefined tensor"));
  REQUIRE_TG_ERROR(undefined.numel(), StartsWith("tensor: use of an undefined tensor"));
  REQUIRE_TG_ERROR(undefined.item(), StartsWith("tensor: use of an undefined tensor"));
  REQUIRE_TG_ERROR(undefined + ones({1}), StartsWith("tensor: use of an undefined tensor"));
  REQUIRE_TG_ERROR(undefined.backward(), StartsWith("tensor: use of an undefined tensor"));
  REQUIRE_TG_ERROR(ones({2}).copy_(undefined), StartsWith("tensor: use of an undefined tensor"));
}

TEST_CASE("errors: in-place writes to a tensor that requires grad with grad mode on", "[errors]") {
  Tensor w = ones({2}).requires_grad_();
  REQUIRE_TG_ERROR(w.copy_(zeros({2})),
                   StartsWith("copy_: in-place write to a tensor of shape [2] that requires grad") &&
                       Contains("NoGradGuard"));
  REQUIRE_TG_ERROR(w.fill_(0), StartsWith("fill_: in-place write to a tensor of shape [2]"));
  CHECK(w.to_vector<float>() == std::vector<float>{1, 1});  // untouched
  // A computed tensor requires grad too.
  Tensor y = w * 3.0;
  REQUIRE_TG_ERROR(y.fill_(0), StartsWith("fill_: "));
  // The guard is per thread: another thread has grad mode on and is refused.
  NoGradGuard guard;
  w.fill_(2);
  bool refused = false;
  std::thread other([&] {
    try {
      w.fill_(5);
    } catch (const Error&) {
      refused = true;
    }
  });
  other.join();
  CHECK(refused);
  CHECK(w.to_vector<float>() == std::vector<float>{2, 2});
}

TEST_CASE("errors: other shape and argument checks name their op", "[errors]") {
  REQUIRE_TG_ERROR(Tensor::empty({2, -1}), StartsWith("empty: negative size in shape [2, -1]"));
  REQUIRE_TG_ERROR(from_vector<float>({1, 2, 3}, {2, 2}),
                   Equals("from_vector: 3 values do not fill shape [2, 2]"));
  REQUIRE_TG_ERROR(ones({2, 3}).copy_(ones({3, 2})),
                   StartsWith("copy_: ") && Contains("[3, 2]") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(ones({2}).copy_(ones({1, 2})),
                   Equals("copy_: source [1, 2] cannot be broadcast to destination [2]"));
  // A broadcast destination: several of its elements are one location.
  const Tensor shared = zeros({1, 3}).expand({2, 3});
  REQUIRE_TG_ERROR(Tensor(shared).copy_(ones({2, 3})),
                   Equals("copy_: destination of shape [2, 3] has several elements in one memory "
                          "location (axis 0 has stride 0); write to a contiguous() copy instead"));
  REQUIRE_TG_ERROR(Tensor(shared).add_(ones({3})), StartsWith("add_: destination of shape [2, 3]"));
  Tensor one = zeros({1, 3}).expand({1, 3});  // size 1: nothing repeated
  one.add_(ones({3}));
  CHECK(one.to_vector<float>() == std::vector<float>{1, 1, 1});
  REQUIRE_TG_ERROR(ones({2}).slice(0, 0, 2, 0), StartsWith("slice: step must be positive"));
  REQUIRE_TG_ERROR(cat({ones({2, 3}), ones({2, 4})}, 0),
                   StartsWith("cat: tensor 1 of shape [2, 4]") && Contains("[2, 3]"));
  REQUIRE_TG_ERROR(layer_norm(ones({2, 3}), ones({4}), Tensor()),
                   StartsWith("layer_norm: x [2, 3]") && Contains("[4]"));
  REQUIRE_TG_ERROR(exp(ones({2}, DType::Int64)), StartsWith("exp: needs a float tensor") &&
                                                     Contains("[2]"));
}

TEST_CASE("errors: a fractional scalar with an int64 tensor", "[errors]") {
  const Tensor counts = from_vector<int64_t>({1, 2, 3});
  REQUIRE_TG_ERROR(counts * 2.5, StartsWith("scalar: 2.5 is not a whole number") &&
                                     Contains("[3]") && Contains("int64"));
  CHECK((counts * 2.0).to_vector<int64_t>() == std::vector<int64_t>{2, 4, 6});
  REQUIRE_TG_ERROR(counts * INFINITY,
                   Equals("scalar: value inf cannot be stored in an int64 tensor"));
}

// An int64 tensor filled with a value it cannot hold is refused (C++ leaves the conversion
// undefined); the tensor being filled keeps its values.
TEST_CASE("errors: fill_, full and masked_fill with a value int64 cannot hold", "[errors]") {
  Tensor counts = from_vector<int64_t>({1, 2, 3});
  for (double bad : {double(NAN), double(INFINITY), -double(INFINITY), 9223372036854775808.0,
                     -9223372036854777856.0}) {
    INFO(bad);
    REQUIRE_TG_ERROR(counts.fill_(bad), StartsWith("fill_: value ") &&
                                            Contains("cannot be stored in an int64 tensor"));
    REQUIRE_TG_ERROR(full({2}, bad, DType::Int64), StartsWith("full: value "));
    REQUIRE_TG_ERROR(masked_fill(counts, ones({3}, DType::Int64), bad),
                     StartsWith("masked_fill: value "));
  }
  CHECK(counts.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3});
  // The extremes themselves fit; fractions truncate toward zero, as PyTorch's fill does.
  CHECK(full({1}, -9223372036854775808.0, DType::Int64).to_vector<int64_t>()[0] == INT64_MIN);
  CHECK(counts.fill_(-2.7).to_vector<int64_t>() == std::vector<int64_t>{-2, -2, -2});
  // Float tensors take any value.
  CHECK(std::isnan(full({1}, NAN).item()));
  CHECK(masked_fill(ones({2}), ones({2}), -INFINITY).to_vector<float>()[1] == -INFINITY);
}

TEST_CASE("errors: shapes whose element count or byte size int64 cannot hold", "[errors]") {
  const int64_t big = int64_t{1} << 62;
  // Counted wrapped, such a shape gave a tensor smaller than itself, and the first write past
  // its memory crashed.
  REQUIRE_TG_ERROR(zeros({big}), Equals("empty: shape [4611686018427387904] of float32 needs "
                                        "more bytes than int64 can count"));
  REQUIRE_TG_ERROR(ones({1}).expand({big}).contiguous(), StartsWith("empty: shape ["));
  REQUIRE_TG_ERROR(
      zeros({int64_t{1} << 32, int64_t{1} << 32}),
      Equals("shape [4294967296, 4294967296] has more elements than int64 can count"));
  REQUIRE_TG_ERROR(zeros({3, big}), Contains("has more elements than int64 can count"));
  REQUIRE_TG_ERROR(zeros({int64_t{1} << 40, int64_t{1} << 40, int64_t{1} << 40, 0}),
                   Contains("has strides larger than int64 can hold"));
  // An empty shape counts 0 elements however large its other sizes.
  CHECK(zeros({big, 0, big}).numel() == 0);
  // A range too large for memory is allocate's error, not std::bad_alloc.
  REQUIRE_TG_ERROR(arange(0, 1e15), StartsWith("allocate: out of host memory for "));
}

TEST_CASE("errors: make_view outside its storage", "[errors]") {
  const Tensor base = ones({2});
  REQUIRE_TG_ERROR(make_view(base, {4}, {1}, 0),
                   Equals("make_view: shape [4] with strides [1] at offset 0 reaches outside its "
                          "storage of 2 elements"));
  REQUIRE_TG_ERROR(make_view(base, {1}, {1}, -1), Contains("reaches outside its storage"));
  REQUIRE_TG_ERROR(make_view(base, {2}, {1}, 1), Contains("reaches outside its storage"));
  REQUIRE_TG_ERROR(make_view(base, {2, 2}, {INT64_MAX, 1}, 0), Contains("reaches outside"));
  REQUIRE_TG_ERROR(make_view(base, {2}, {1, 1}, 0), Contains("differ in length"));
  // A negative size is no size: refused, also beside a 0 (which would otherwise pass as empty).
  REQUIRE_TG_ERROR(make_view(base, {-1}, {1}, 1), Equals("make_view: negative size in shape [-1]"));
  REQUIRE_TG_ERROR(make_view(base, {0, -3}, {1, 1}, 0), Contains("negative size"));
  CHECK(make_view(base, {2, 3}, {1, 0}, 0).to_vector<float>() == std::vector<float>(6, 1));
  CHECK(make_view(base, {0, 5}, {1, 1}, 7).numel() == 0);  // no element, nothing to reach
}

TEST_CASE("errors: gradcheck with nothing to check", "[errors]") {
  const Tensor x = ones({2}, DType::Float64);
  REQUIRE_TG_ERROR(gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {x}),
                   StartsWith("gradcheck: no input requires grad"));
}
