// Core tensor tests: geometry, views over shared storage, copies, dtype conversion, host reads,
// printing, factories, devices.
#include <catch2/catch.hpp>

#include <climits>
#include <cmath>
#include <string>

#include "tinygrok.h"

using namespace tg;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;

namespace {

// 0, 1, 2, ... as float32 in `shape`.
Tensor iota_f32(const Shape& shape) { return arange(0, static_cast<double>(numel(shape)), 1,
                                                    DType::Float32).reshape(shape); }

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("tensor: shape, strides, offset and size", "[tensor]") {
  Tensor t = zeros({2, 3, 4});
  CHECK(t.shape() == Shape{2, 3, 4});
  CHECK(t.strides() == Strides{12, 4, 1});
  CHECK(t.offset() == 0);
  CHECK(t.dim() == 3);
  CHECK(t.numel() == 24);
  CHECK(t.size(0) == 2);
  CHECK(t.size(-1) == 4);
  CHECK(t.dtype() == DType::Float32);
  CHECK(t.device() == Device::cpu());
  CHECK(t.is_contiguous());
  CHECK(t.is_leaf());
  CHECK_FALSE(t.requires_grad());

  Tensor s = scalar(2.5);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.strides().empty());

  // Sizes of zero are legal and give an empty tensor.
  Tensor e = zeros({3, 0});
  CHECK(e.numel() == 0);
  CHECK(e.to_vector<float>().empty());
}

TEST_CASE("tensor: reshape and view of contiguous data share storage", "[tensor]") {
  Tensor a = iota_f32({2, 3});
  Tensor r = a.reshape({3, 2});
  Tensor v = a.view({-1});
  CHECK(r.storage() == a.storage());
  CHECK(v.storage() == a.storage());
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.strides() == Strides{2, 1});
  CHECK(v.shape() == Shape{6});
  CHECK(a.flatten().storage() == a.storage());

  r.select(0, 2).fill_(-1);  // r[2, :] is a[1, 1:3]
  CHECK(values(a) == std::vector<float>{0, 1, 2, 3, -1, -1});
  CHECK(values(v) == std::vector<float>{0, 1, 2, 3, -1, -1});
}

TEST_CASE("tensor: transpose and permute are strided views", "[tensor]") {
  Tensor a = iota_f32({2, 3});
  Tensor t = a.t();
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.strides() == Strides{1, 3});
  CHECK(t.storage() == a.storage());
  CHECK_FALSE(t.is_contiguous());
  CHECK(values(t) == std::vector<float>{0, 3, 1, 4, 2, 5});

  t.select(0, 1).copy_(from_vector<float>({10, 40}));  // column 1 of a
  CHECK(values(a) == std::vector<float>{0, 10, 2, 3, 40, 5});

  Tensor b = iota_f32({2, 3, 4});
  Tensor p = b.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Strides{1, 12, 4});
  CHECK(p.storage() == b.storage());
  CHECK(p.select(0, 3).to_vector<float>() == std::vector<float>{3, 7, 11, 15, 19, 23});
  Tensor back = p.permute({1, 2, 0});
  CHECK(back.strides() == b.strides());
  CHECK(back.is_contiguous());
  CHECK(b.transpose(0, -1).shape() == Shape{4, 3, 2});
  CHECK(b.t().shape() == Shape{2, 4, 3});  // the last two axes
  // 0-D and 1-D tensors are their own transpose, as in PyTorch.
  const Tensor v = iota_f32({3});
  CHECK(v.t().shape() == Shape{3});
  CHECK(v.t().storage() == v.storage());
  CHECK(scalar(2.5).t().item<float>() == 2.5f);
}

TEST_CASE("tensor: slice with step and negative bounds is a view", "[tensor]") {
  Tensor a = iota_f32({10});
  Tensor s = a.slice(0, 1, 8, 3);
  CHECK(s.shape() == Shape{3});
  CHECK(s.strides() == Strides{3});
  CHECK(s.offset() == 1);
  CHECK(values(s) == std::vector<float>{1, 4, 7});
  CHECK(s.storage() == a.storage());

  Tensor n = a.slice(0, -4, -1);  // a[-4:-1] = 6, 7, 8
  CHECK(n.offset() == 6);
  CHECK(values(n) == std::vector<float>{6, 7, 8});

  // Out-of-range bounds clamp, as in Python; an inverted range is empty.
  CHECK(values(a.slice(0, 7, 100)) == std::vector<float>{7, 8, 9});
  CHECK(a.slice(0, -100, 2).numel() == 2);
  CHECK(a.slice(0, 6, 3).numel() == 0);
  CHECK(a.slice(0, 0, 10, 4).shape() == Shape{3});  // 0, 4, 8
  // A step past the end takes the first element, as Python's range(5)[0:5:2**63 - 1] does (no
  // overflow on the way, which the sanitizer build would catch).
  CHECK(values(a.slice(0, 2, 10, INT64_MAX)) == std::vector<float>{2});
  CHECK(iota_f32({3, 5}).slice(0, 1, 3, INT64_MAX / 4).shape() == Shape{1, 5});

  s.fill_(-1);
  n.copy_(from_vector<float>({60, 70, 80}));
  CHECK(values(a) == std::vector<float>{0, -1, 2, 3, -1, 5, 60, 70, 80, 9});

  // Slicing an inner axis of a matrix keeps the outer stride.
  Tensor m = iota_f32({3, 4});
  Tensor cols = m.slice(1, 1, 4, 2);  // columns 1 and 3
  CHECK(cols.shape() == Shape{3, 2});
  CHECK(cols.strides() == Strides{4, 2});
  CHECK(values(cols) == std::vector<float>{1, 3, 5, 7, 9, 11});
}

TEST_CASE("tensor: select removes the axis and shares storage", "[tensor]") {
  Tensor m = iota_f32({3, 4});
  Tensor last_col = m.select(1, -1);
  CHECK(last_col.shape() == Shape{3});
  CHECK(last_col.strides() == Strides{4});
  CHECK(last_col.offset() == 3);
  CHECK(values(last_col) == std::vector<float>{3, 7, 11});
  Tensor row = m.select(0, 1);
  CHECK(row.offset() == 4);
  row.fill_(0);
  CHECK(values(m) == std::vector<float>{0, 1, 2, 3, 0, 0, 0, 0, 8, 9, 10, 11});
  CHECK(values(last_col) == std::vector<float>{3, 0, 11});
  CHECK(m.select(0, 2).select(0, 1).item() == 9);
}

TEST_CASE("tensor: expand repeats with stride 0 over the same storage", "[tensor]") {
  Tensor v = from_vector<float>({1, 2, 3});
  Tensor e = v.expand({2, 3});
  CHECK(e.shape() == Shape{2, 3});
  CHECK(e.strides() == Strides{0, 1});
  CHECK(e.storage() == v.storage());
  CHECK_FALSE(e.is_contiguous());
  CHECK(values(e) == std::vector<float>{1, 2, 3, 1, 2, 3});

  v.select(0, 1).fill_(20);  // one write shows in every repeat
  CHECK(values(e) == std::vector<float>{1, 20, 3, 1, 20, 3});

  Tensor c = from_vector<float>({5, 6}, {2, 1}).expand({2, 3});
  CHECK(c.strides() == Strides{1, 0});
  CHECK(values(c) == std::vector<float>{5, 5, 5, 6, 6, 6});

  // expand to the same shape is the tensor itself.
  CHECK(v.expand({3}).same(v));
}

TEST_CASE("tensor: squeeze and unsqueeze are views", "[tensor]") {
  Tensor a = iota_f32({2, 3});
  Tensor u0 = a.unsqueeze(0);
  Tensor u1 = a.unsqueeze(1);
  Tensor ul = a.unsqueeze(-1);
  CHECK(u0.shape() == Shape{1, 2, 3});
  CHECK(u1.shape() == Shape{2, 1, 3});
  CHECK(ul.shape() == Shape{2, 3, 1});
  CHECK(u1.is_contiguous());
  CHECK(ul.is_contiguous());
  CHECK(u1.storage() == a.storage());
  CHECK(u1.squeeze(1).shape() == Shape{2, 3});
  CHECK(u1.squeeze(1).strides() == Strides{3, 1});

  u1.select(0, 1).fill_(7);
  CHECK(values(a) == std::vector<float>{0, 1, 2, 7, 7, 7});
  ul.squeeze(-1).select(1, 0).fill_(-2);
  CHECK(values(a) == std::vector<float>{-2, 1, 2, -2, 7, 7});
}

TEST_CASE("tensor: is_contiguous and contiguous() copy only when needed", "[tensor]") {
  Tensor a = iota_f32({3, 4});
  CHECK(a.contiguous().same(a));
  CHECK(a.select(0, 1).is_contiguous());  // a row is contiguous (nonzero offset)
  CHECK_FALSE(a.select(1, 1).is_contiguous());
  CHECK(a.slice(0, 1, 3).is_contiguous());
  CHECK_FALSE(a.slice(1, 0, 2).is_contiguous());
  CHECK(a.unsqueeze(0).expand({1, 3, 4}).is_contiguous());  // size-1 axes never matter

  Tensor t = a.t();
  Tensor c = t.contiguous();
  CHECK_FALSE(c.same(t));
  CHECK(c.storage() != a.storage());
  CHECK(c.is_contiguous());
  CHECK(c.strides() == Strides{3, 1});
  CHECK(values(c) == values(t));

  // The copy is independent of the original.
  c.fill_(0);
  CHECK(a.select(0, 0).select(0, 1).item() == 1);
}

TEST_CASE("tensor: reshape of a non-contiguous tensor copies; view refuses", "[tensor]") {
  Tensor a = iota_f32({2, 3});
  Tensor t = a.t();
  Tensor r = t.reshape({6});
  CHECK(r.storage() != a.storage());
  CHECK(values(r) == std::vector<float>{0, 3, 1, 4, 2, 5});
  r.fill_(9);
  CHECK(values(a) == std::vector<float>{0, 1, 2, 3, 4, 5});
  CHECK_THROWS_AS(t.view({6}), Error);
  // -1 is inferred.
  CHECK(a.reshape({-1, 2}).shape() == Shape{3, 2});
  CHECK(zeros({0, 4}).reshape({4, -1}).shape() == Shape{4, 0});
  // Sizes whose product int64 cannot hold: an error naming the op, not an overflow.
  CHECK_THROWS_WITH(zeros({0}).reshape({int64_t{1} << 40, int64_t{1} << 40, -1}),
                    StartsWith("reshape: [0] -> [1099511627776, 1099511627776, -1]: shape") &&
                        Contains("more elements than int64 can count"));
  CHECK(zeros({0}).reshape({int64_t{1} << 40, int64_t{1} << 40, 0}).numel() == 0);
}

TEST_CASE("tensor: to(DType) converts float32, float64 and int64", "[tensor]") {
  Tensor f = from_vector<float>({1.5f, -2.75f, 3.0f});
  CHECK(f.to(DType::Float32).same(f));

  Tensor d = f.to(DType::Float64);
  CHECK(d.dtype() == DType::Float64);
  CHECK(d.storage() != f.storage());
  CHECK(d.to_vector<double>() == std::vector<double>{1.5, -2.75, 3.0});

  Tensor i = from_vector<double>({2.7, -2.7, 0.2, 7}).to(DType::Int64);
  CHECK(i.dtype() == DType::Int64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{2, -2, 0, 7});  // truncation toward zero

  Tensor back = i.to(DType::Float32);
  CHECK(back.dtype() == DType::Float32);
  CHECK(values(back) == std::vector<float>{2, -2, 0, 7});

  // Strided views convert in logical order.
  Tensor m = iota_f32({2, 3}).t().to(DType::Int64);
  CHECK(m.to_vector<int64_t>() == std::vector<int64_t>{0, 3, 1, 4, 2, 5});

  // Floats outside int64's range saturate and NaN becomes 0 (what a GPU's conversion does; C++
  // leaves these undefined), through to(), copy_, add_, to_vector and item alike.
  const Tensor special = from_vector<float>({NAN, INFINITY, -INFINITY, 1e30f, -1e30f,
                                             9.3e18f, -9.3e18f, -0.5f});
  const std::vector<int64_t> saturated = {0,         INT64_MAX, INT64_MIN, INT64_MAX,
                                          INT64_MIN, INT64_MAX, INT64_MIN, 0};
  CHECK(special.to(DType::Int64).to_vector<int64_t>() == saturated);
  CHECK(special.to(DType::Float64).to(DType::Int64).to_vector<int64_t>() == saturated);
  CHECK(special.to_vector<int64_t>() == saturated);
  CHECK(zeros({8}, DType::Int64).copy_(special).to_vector<int64_t>() == saturated);
  CHECK(zeros({8}, DType::Int64).add_(special).to_vector<int64_t>() == saturated);
  CHECK(special.select(0, 0).item<int64_t>() == 0);
  CHECK(special.select(0, 3).item<int>() == INT_MAX);
  // The largest float below 2^63, 2^63 - 2^39, converts exactly; so does -2^63.
  CHECK(from_vector<float>({9.2233715e18f, -9.223372e18f}).to(DType::Int64).to_vector<int64_t>() ==
        std::vector<int64_t>{INT64_MAX - (int64_t(1) << 39) + 1, INT64_MIN});

  // float64 -> float32 rounds.
  Tensor narrowed = from_vector<double>({0.1}).to(DType::Float32);
  CHECK(narrowed.to_vector<float>()[0] == 0.1f);
}

TEST_CASE("tensor: item and to_vector read values on the host", "[tensor]") {
  CHECK(scalar(3.5).item() == 3.5);
  CHECK(scalar(-4, DType::Int64).item<int64_t>() == -4);
  CHECK(from_vector<float>({2.25f}, {1, 1}).item() == 2.25);
  CHECK(from_vector<double>({0.1}).item() == 0.1);  // no float32 round trip for float64

  Tensor a = iota_f32({2, 3});
  CHECK(a.to_vector<double>() == std::vector<double>{0, 1, 2, 3, 4, 5});
  CHECK(a.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(a.select(1, 2).to_vector<float>() == std::vector<float>{2, 5});
  CHECK(from_vector<int64_t>({1LL << 40}).to_vector<int64_t>()[0] == (1LL << 40));
  // int64 values above 2^53 are not representable in double: item<int64_t> must read them exactly.
  const int64_t big = (1LL << 53) + 1;
  CHECK(from_vector<int64_t>({big}).item<int64_t>() == big);
  CHECK(scalar(-7, DType::Int64).item<int>() == -7);
  CHECK(scalar(2.75).item<int>() == 2);
  CHECK_THROWS_AS(zeros({2}, DType::Int64).item<int64_t>(), Error);
}

TEST_CASE("tensor: str() shows values, shape, dtype and device", "[tensor]") {
  Tensor m = from_vector<float>({1, 2, 3, 4.5f}, {2, 2});
  const std::string s = m.str();
  CHECK_THAT(s, StartsWith("tensor("));
  CHECK_THAT(s, Contains("[[1, 2],"));
  CHECK_THAT(s, Contains("[3, 4.5]]"));
  CHECK_THAT(s, Contains("shape=[2, 2]"));
  CHECK_THAT(s, Contains("dtype=float32"));
  CHECK_THAT(s, Contains("device=cpu"));
  CHECK_THAT(s, !Contains("..."));
  CHECK_THAT(s, !Contains("requires_grad"));

  CHECK_THAT(from_vector<int64_t>({-3, 7}).str(), Contains("[-3, 7]") && Contains("dtype=int64"));
  // int64 prints exactly, past 2^53 (where a double would round) and at both ends.
  CHECK_THAT(from_vector<int64_t>({INT64_MAX, (int64_t{1} << 53) + 1, INT64_MIN}).str(),
             Contains("[9223372036854775807, 9007199254740993, -9223372036854775808]"));
  CHECK_THAT(scalar(0.25, DType::Float64).str(),
             Contains("tensor(0.25,") && Contains("shape=[]") && Contains("float64"));
  CHECK_THAT(ones({2}).requires_grad_().str(), Contains("requires_grad"));
  CHECK(Tensor().str() == "tensor(undefined)");

  // A non-contiguous view prints in logical order.
  CHECK_THAT(iota_f32({2, 2}).t().str(), Contains("[[0, 2],"));

  std::ostringstream out;
  out << m;
  CHECK(out.str() == s);
}

TEST_CASE("tensor: large tensors print summarised with ...", "[tensor]") {
  const std::string s = arange(100).str();
  CHECK_THAT(s, Contains("[0, 1, 2, ..., 97, 98, 99]"));
  CHECK_THAT(s, Contains("shape=[100]"));
  CHECK_THAT(s, !Contains("50"));

  CHECK_THAT(arange(0).str(), StartsWith("tensor([], shape=[0]"));
  CHECK_THAT(arange(13).str(), Contains("[0, 1, 2, ..., 10, 11, 12]"));

  // Twelve elements are still printed in full.
  CHECK_THAT(arange(12).str(), Contains("[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]"));

  // Both axes of a large matrix are summarised: 3 + 3 rows, each with 3 + 3 values.
  const std::string big = zeros({1000, 1000}).str();
  CHECK(count_of(big, "...") == 7);  // one per printed row, one for the skipped rows
  CHECK_THAT(big, Contains("shape=[1000, 1000]"));
  CHECK(big.size() < 400);
}

TEST_CASE("tensor: factories zeros, ones, full, scalar, zeros_like", "[tensor]") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(values(z) == std::vector<float>(6, 0));
  CHECK(ones({4}, DType::Float64).to_vector<double>() == std::vector<double>(4, 1));
  Tensor f = full({2, 2}, 7, DType::Int64);
  CHECK(f.dtype() == DType::Int64);
  CHECK(f.to_vector<int64_t>() == std::vector<int64_t>(4, 7));
  CHECK(values(full({3}, -0.5)) == std::vector<float>(3, -0.5f));

  Tensor s = scalar(4, DType::Float64);
  CHECK(s.shape().empty());
  CHECK(s.dtype() == DType::Float64);
  CHECK(s.item() == 4);

  Tensor base = full({3, 1}, 2, DType::Float64);
  Tensor zl = zeros_like(base);
  CHECK(zl.shape() == base.shape());
  CHECK(zl.dtype() == DType::Float64);
  CHECK(zl.storage() != base.storage());
  CHECK(zl.to_vector<double>() == std::vector<double>(3, 0));
  CHECK(ones_like(base).to_vector<double>() == std::vector<double>(3, 1));
  // zeros_like of a view is a fresh contiguous tensor.
  CHECK(zeros_like(iota_f32({2, 3}).t()).strides() == Strides{2, 1});
}

TEST_CASE("tensor: arange with integer and float steps, and empty ranges", "[tensor]") {
  Tensor a = arange(5);
  CHECK(a.dtype() == DType::Int64);
  CHECK(a.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(arange(2, 11, 3).to_vector<int64_t>() == std::vector<int64_t>{2, 5, 8});
  CHECK(arange(5, 0, -2).to_vector<int64_t>() == std::vector<int64_t>{5, 3, 1});
  // Whole int64 bounds count exactly past 2^53, as torch.arange(2**53, 2**53 + 4).
  const int64_t big = int64_t{1} << 53;
  CHECK(arange(0x1p53, 0x1p53 + 4).to_vector<int64_t>() ==
        std::vector<int64_t>{big, big + 1, big + 2, big + 3});
  CHECK(arange(0x1p53 + 2, 0x1p53 - 2, -1).to_vector<int64_t>() ==
        std::vector<int64_t>{big + 2, big + 1, big, big - 1});
  CHECK_THROWS_WITH(arange(0x1p62, 0x1p64, 0x1p62), Contains("goes past int64"));

  Tensor f = arange(0, 1, 0.25, DType::Float32);
  CHECK(f.dtype() == DType::Float32);
  CHECK(values(f) == std::vector<float>{0, 0.25f, 0.5f, 0.75f});
  CHECK(arange(0, 0.3, 0.1, DType::Float64).numel() == 3);  // as numpy: 0, 0.1, 0.2
  CHECK(arange(-1, 1, 0.5, DType::Float64).to_vector<double>() ==
        std::vector<double>{-1, -0.5, 0, 0.5});

  Tensor empty = arange(3, 3);
  CHECK(empty.shape() == Shape{0});
  CHECK(empty.numel() == 0);
  CHECK(arange(5, 0).numel() == 0);             // wrong direction for the step
  CHECK(arange(0, 5, -1, DType::Float32).numel() == 0);
  CHECK_THROWS_AS(arange(0, 5, 0), Error);
  // A bound that is not finite is an error, not a huge allocation or a silent empty range.
  CHECK_THROWS_WITH(arange(0, INFINITY), StartsWith("arange: unsupported range 0 to inf by 1"));
  CHECK_THROWS_WITH(arange(NAN, 5), StartsWith("arange: unsupported range nan to 5"));
  CHECK_THROWS_WITH(arange(0, 5, NAN), Contains("all must be finite"));
  CHECK_THROWS_WITH(arange(0, 1e30), Equals("arange: range 0 to 1e+30 by 1 has 1e+30 elements"));
}

TEST_CASE("tensor: from_vector and clone", "[tensor]") {
  Tensor v = from_vector<double>({1, 2, 3, 4, 5, 6}, {3, 2});
  CHECK(v.shape() == Shape{3, 2});
  CHECK(v.dtype() == DType::Float64);
  CHECK(from_vector<int64_t>({4, 5}).dtype() == DType::Int64);
  CHECK(from_vector<float>({1, 2, 3}).shape() == Shape{3});
  CHECK(from_vector<float>({}).shape() == Shape{0});
  CHECK_THROWS_AS(from_vector<float>({1, 2, 3}, {2, 2}), Error);

  Tensor t = v.t();
  Tensor c = t.clone();
  CHECK(c.storage() != v.storage());
  CHECK(c.is_contiguous());
  CHECK(c.shape() == Shape{2, 3});
  CHECK(c.to_vector<double>() == std::vector<double>{1, 3, 5, 2, 4, 6});
  c.fill_(0);
  CHECK(v.to_vector<double>() == std::vector<double>{1, 2, 3, 4, 5, 6});

  Tensor cc = v.clone();  // a contiguous source is copied too
  CHECK(cc.storage() != v.storage());
  CHECK(cc.to_vector<double>() == v.to_vector<double>());
}

TEST_CASE("tensor: copy_ broadcasts and converts; fill_ writes in place", "[tensor]") {
  Tensor dst = zeros({2, 3}, DType::Float64);
  dst.copy_(from_vector<float>({1, 2, 3}));
  CHECK(dst.to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
  dst.copy_(from_vector<int64_t>({7, 8}, {2, 1}));
  CHECK(dst.to_vector<double>() == std::vector<double>{7, 7, 7, 8, 8, 8});
  dst.fill_(-1);
  CHECK(dst.to_vector<double>() == std::vector<double>(6, -1));

  // Allowed on a tensor that requires grad under NoGradGuard (optimiser updates).
  Tensor w = ones({2}).requires_grad_();
  {
    NoGradGuard guard;
    w.fill_(3);
    w.copy_(from_vector<float>({4, 5}));
  }
  CHECK(values(w) == std::vector<float>{4, 5});
  CHECK(w.is_leaf());
}

TEST_CASE("tensor: add_ broadcasts, converts and adds in place", "[tensor]") {
  // A float64 running sum of float32 values: each converted, then added in double.
  Tensor total = zeros({}, DType::Float64);
  for (float x : {0.1f, 0.2f, 0.3f}) total.add_(from_vector<float>({x}).reshape({}));
  CHECK(total.item() == static_cast<double>(0.1f) + static_cast<double>(0.2f) +
                            static_cast<double>(0.3f));
  // Broadcast and int64 sources, into a transposed (strided) destination.
  Tensor base = from_vector<double>({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor dst = base.t();  // [2, 3]
  dst.add_(from_vector<int64_t>({10, 20, 30}));
  CHECK(base.to_vector<double>() == std::vector<double>{11, 12, 23, 24, 35, 36});
  dst.add_(from_vector<float>({-1, 1}, {2, 1}));
  CHECK(dst.to_vector<double>() == std::vector<double>{10, 22, 34, 13, 25, 37});

  CHECK_THROWS_WITH(zeros({2, 3}).add_(ones({3, 2})),
                    Catch::Contains("add_: shapes [3, 2] and [2, 3] cannot be broadcast"));
  CHECK_THROWS_WITH(zeros({1, 3}).add_(ones({3, 1})),
                    Catch::Contains("add_: source [3, 1] cannot be broadcast to destination [1, 3]"));
  Tensor w = ones({2}).requires_grad_();
  CHECK_THROWS_WITH(w.add_(ones({2})), Catch::Contains("add_: in-place write") &&
                                            Catch::Contains("NoGradGuard"));
  {
    NoGradGuard guard;
    w.add_(ones({2}));
  }
  CHECK(values(w) == std::vector<float>{2, 2});
}

TEST_CASE("tensor: copy_ and add_ from an overlapping view read the values before the write",
          "[tensor]") {
  // Source and destination share memory in another arrangement: the write must not feed its
  // own later reads (NumPy's answer; PyTorch refuses these writes).
  Tensor a = arange(0, 9).reshape({3, 3});
  a.add_(a.t());
  CHECK(values(a) == std::vector<float>{0, 4, 8, 4, 8, 12, 8, 12, 16});
  Tensor b = arange(0, 9).reshape({3, 3});
  b.copy_(b.t());
  CHECK(values(b) == std::vector<float>{0, 3, 6, 1, 4, 7, 2, 5, 8});
  Tensor shifted = arange(0, 6);
  shifted.slice(0, 1, 6).copy_(shifted.slice(0, 0, 5));
  CHECK(values(shifted) == std::vector<float>{0, 0, 1, 2, 3, 4});
  Tensor running = arange(0, 6);
  running.slice(0, 1, 6).add_(running.slice(0, 0, 5));
  CHECK(values(running) == std::vector<float>{0, 1, 3, 5, 7, 9});
  Tensor rows = arange(0, 6).reshape({3, 2});
  rows.add_(rows.select(0, 0));  // row 0, broadcast over every row, itself included
  CHECK(values(rows) == std::vector<float>{0, 2, 2, 4, 4, 6});
  // The same view, and views of one storage that do not meet, need no copy and get none.
  Tensor c = arange(0, 4);
  c.add_(c);
  CHECK(values(c) == std::vector<float>{0, 2, 4, 6});
  Tensor halves = arange(0, 4);
  halves.slice(0, 2, 4).copy_(halves.slice(0, 0, 2));
  CHECK(values(halves) == std::vector<float>{0, 1, 0, 1});
}

TEST_CASE("tensor: parse_device", "[tensor]") {
  CHECK(parse_device("cpu") == Device::cpu());
  CHECK(parse_device("cuda") == Device::cuda(0));
  CHECK(parse_device("cuda:1") == Device::cuda(1));
  CHECK(parse_device("cuda:12").index == 12);
  CHECK(parse_device("cuda:1").type == DeviceType::CUDA);
  CHECK(Device::cuda(3).str() == "cuda:3");
  CHECK(Device::cpu().str() == "cpu");
  CHECK(Device::cpu().is_cpu());
  CHECK_FALSE(Device::cuda().is_cpu());
  CHECK(Device::cuda(0) != Device::cuda(1));

  for (const char* bad : {"gpu", "", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:1a", "cuda1",
                          "cuda:99999", " cpu"}) {
    INFO("device name '" << bad << "'");
    CHECK_THROWS_AS(parse_device(bad), Error);
    CHECK_THROWS_WITH(parse_device(bad), StartsWith("device: unknown device '" + std::string(bad) +
                                                    "'"));
  }
}
