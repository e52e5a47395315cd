// Matmul tests: values by hand, 1-D operands (numpy.matmul rules), batch broadcasting, transposed
// and strided operands, Eigen's GEMM against a naive triple loop in double on awkward sizes, and
// float64 gradchecks including the gradient summed over broadcast batch axes.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "kernels/backend.h"
#include "op_test_util.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::broadcast_values;
using tg::testing::check_tensor;
using tg::testing::relative_error;
using tg::testing::strided_values;

namespace {

// numpy.matmul in double by triple loop, for operands of at least two dimensions:
// [..., M, K] @ [..., K, N] with broadcast batch axes. Returns the values of [batch..., M, N].
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  REQUIRE(b.size(-2) == k);
  const Shape a_batch(a.shape().begin(), a.shape().end() - 2);
  const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = broadcast_shapes(a_batch, b_batch, "naive_matmul");
  Shape a_full = batch, b_full = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  const std::vector<double> va = broadcast_values(strided_values(a), a.shape(), a_full);
  const std::vector<double> vb = broadcast_values(strided_values(b), b.shape(), b_full);
  std::vector<double> out(static_cast<size_t>(numel(batch) * m * n), 0.0);
  for (int64_t p = 0; p < numel(batch); ++p)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double total = 0;
        for (int64_t l = 0; l < k; ++l)
          total += va[(p * m + i) * k + l] * vb[(p * k + l) * n + j];
        out[(p * m + i) * n + j] = total;
      }
  return out;
}

enum class Layout { Contiguous, Transposed, Stepped };

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contiguous: return "contiguous";
    case Layout::Transposed: return "transposed";
    case Layout::Stepped: return "stepped";
  }
  return "?";
}

// A random [..., rows, cols] operand laid out as asked: contiguous, the transpose of a contiguous
// [..., cols, rows] tensor (column-major), or every other column of a wider one (strided).
Tensor make_operand(Shape shape, Layout layout, Generator& gen, DType dtype) {
  const size_t d = shape.size();
  switch (layout) {
    case Layout::Contiguous: return randn(shape, gen, dtype);
    case Layout::Transposed:
      std::swap(shape[d - 1], shape[d - 2]);
      return randn(shape, gen, dtype).transpose(-2, -1);
    case Layout::Stepped: {
      const int64_t cols = shape[d - 1];
      shape[d - 1] = 2 * cols;
      return randn(shape, gen, dtype).slice(-1, 1, 2 * cols, 2);
    }
  }
  return Tensor();
}

}  // namespace

// --- by hand -----------------------------------------------------------------------------------

TEST_CASE("matmul: a 2x3 @ 3x2 by hand", "[matmul]") {
  Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector<float>({7, 8, 9, 10, 11, 12}, {3, 2});
  check_tensor(matmul(a, b), {2, 2}, {58, 64, 139, 154}, 0);
  check_tensor(a.matmul(b), {2, 2}, {58, 64, 139, 154}, 0);
  check_tensor(matmul(b, a), {3, 3}, {39, 54, 69, 49, 68, 87, 59, 82, 105}, 0);
  Tensor ad = a.to(DType::Float64), bd = b.to(DType::Float64);
  CHECK(matmul(ad, bd).dtype() == DType::Float64);
  check_tensor(matmul(ad, bd), {2, 2}, {58, 64, 139, 154}, 0);
}

TEST_CASE("matmul: 1-D operands follow numpy.matmul", "[matmul]") {
  Tensor m = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor v2 = from_vector<double>({1, 2});
  Tensor v3 = from_vector<double>({1, 0, -1});
  check_tensor(matmul(v2, m), {3}, {9, 12, 15}, 0);   // vector @ matrix
  check_tensor(matmul(m, v3), {2}, {-2, -2}, 0);      // matrix @ vector
  Tensor dot = matmul(from_vector<double>({1, 2, 3}), from_vector<double>({4, 5, 6}));
  CHECK(dot.dim() == 0);                              // vector @ vector is 0-d
  CHECK(dot.item() == 32);

  // A vector against a batch of matrices, and a batch against a vector.
  Tensor batch = arange(0, 24, 1, DType::Float64).reshape({2, 3, 4});
  Tensor v4 = from_vector<double>({1, 0, 0, 2});
  Tensor bv = matmul(batch, v4);  // [2, 3]: x[., ., 0] + 2 x[., ., 3]
  check_tensor(bv, {2, 3}, {6, 18, 30, 42, 54, 66}, 0);
  Tensor vb = matmul(from_vector<double>({1, 1, 1}), batch);  // [2, 4]: column sums
  check_tensor(vb, {2, 4}, {12, 15, 18, 21, 48, 51, 54, 57}, 0);
}

TEST_CASE("matmul: batch axes broadcast, [2,1,3,4] @ [5,4,2] -> [2,5,3,2]", "[matmul]") {
  Generator gen(41);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    Tensor a = randn({2, 1, 3, 4}, gen, dtype), b = randn({5, 4, 2}, gen, dtype);
    Tensor out = matmul(a, b);
    REQUIRE(out.shape() == Shape{2, 5, 3, 2});
    CHECK(relative_error(out.to_vector<double>(), naive_matmul(a, b)) <
          (dtype == DType::Float32 ? 1e-6 : 1e-14));
    // A 2-D operand broadcasts against a batch too.
    Tensor w = randn({4, 3}, gen, dtype);
    Tensor out2 = matmul(b.transpose(-2, -1), w);  // [5,2,4] @ [4,3] -> [5,2,3]
    REQUIRE(out2.shape() == Shape{5, 2, 3});
    CHECK(relative_error(out2.to_vector<double>(), naive_matmul(b.transpose(-2, -1), w)) <
          (dtype == DType::Float32 ? 1e-6 : 1e-14));
  }
  // Batch axes that cannot broadcast are an error naming the shapes.
  CHECK_THROWS_AS(matmul(ones({2, 3, 4}), ones({3, 4, 5})), Error);
}

TEST_CASE("matmul: transposed operands map without a copy and give the same result",
          "[matmul]") {
  Generator gen(42);
  Tensor a = randn({5, 3}, gen), b = randn({5, 4}, gen);
  Tensor at = a.t();  // [3, 5], column-major view of a's storage
  CHECK_FALSE(at.is_contiguous());
  CHECK(at.storage() == a.storage());
  Tensor out = matmul(at, b);
  REQUIRE(out.shape() == Shape{3, 4});
  CHECK(relative_error(out.to_vector<double>(), matmul(at.clone(), b).to_vector<double>()) < 1e-6);
  CHECK(relative_error(out.to_vector<double>(), naive_matmul(at, b)) < 1e-6);
  // Both operands transposed: (b^T a)^T = a^T b.
  Tensor both = matmul(b.t(), a).t();
  CHECK(relative_error(both.to_vector<double>(), naive_matmul(at, b)) < 1e-6);
  // The operands are left untouched.
  CHECK(strided_values(at) == strided_values(a.t().clone()));
}

TEST_CASE("matmul: strided operands (slices with a step) give the same result", "[matmul]") {
  Generator gen(43);
  Tensor big = randn({8, 10}, gen, DType::Float64);
  Tensor rows = big.slice(0, 1, 8, 2);      // [4, 10], row stride 20
  Tensor cols = big.slice(1, 0, 10, 3);     // [8, 4], column stride 3
  Tensor both = big.slice(0, 0, 8, 3).slice(1, 2, 10, 2);  // [3, 4]
  Tensor rhs = randn({10, 3}, gen, DType::Float64);
  Tensor lhs = randn({3, 8}, gen, DType::Float64);
  CHECK(relative_error(matmul(rows, rhs).to_vector<double>(),
                       matmul(rows.clone(), rhs).to_vector<double>()) < 1e-14);
  CHECK(relative_error(matmul(lhs, cols).to_vector<double>(), naive_matmul(lhs, cols)) < 1e-14);
  CHECK(relative_error(matmul(both, cols.slice(0, 0, 4)).to_vector<double>(),
                       naive_matmul(both, cols.slice(0, 0, 4))) < 1e-14);
  // A stepped vector on either side.
  Tensor v = randn({20}, gen, DType::Float64).slice(0, 0, 20, 2);  // [10], stride 2
  Tensor vm = matmul(v, rhs);
  REQUIRE(vm.shape() == Shape{3});
  CHECK(relative_error(vm.to_vector<double>(), naive_matmul(v.unsqueeze(0), rhs)) < 1e-14);
  Tensor mv = matmul(rows, v);
  REQUIRE(mv.shape() == Shape{4});
  CHECK(relative_error(mv.to_vector<double>(), naive_matmul(rows, v.unsqueeze(1))) < 1e-14);
  // A stepped batch axis.
  Tensor batch = randn({5, 3, 4}, gen, DType::Float64).slice(0, 0, 5, 2);  // [3, 3, 4]
  Tensor r = randn({3, 4, 2}, gen, DType::Float64);
  CHECK(relative_error(matmul(batch, r).to_vector<double>(), naive_matmul(batch, r)) < 1e-14);
}

TEST_CASE("matmul: empty inner dimension gives zeros, empty rows give an empty result",
          "[matmul]") {
  check_tensor(matmul(ones({2, 0}), ones({0, 3})), {2, 3}, {0, 0, 0, 0, 0, 0}, 0);
  CHECK(matmul(ones({0, 3}), ones({3, 2})).shape() == Shape{0, 2});
}

TEST_CASE("matmul: shape, dtype and rank errors", "[matmul]") {
  CHECK_THROWS_AS(matmul(ones({3, 4}), ones({5, 6})), Error);
  CHECK_THROWS_AS(matmul(ones({3}), ones({4})), Error);
  CHECK_THROWS_AS(matmul(scalar(1), ones({3})), Error);
  CHECK_THROWS_AS(matmul(ones({2, 2}), ones({2, 2}, DType::Float64)), Error);
  CHECK_THROWS_AS(matmul(ones({2, 2}, DType::Int64), ones({2, 2}, DType::Int64)), Error);
}

// --- the GEMM against a naive triple loop --------------------------------------------------------

TEST_CASE("matmul: matches a naive triple loop on awkward sizes, layouts and dtypes", "[matmul]") {
  Generator gen(44);
  struct Size {
    Shape batch;
    int64_t m, k, n;
  };
  // 70x67x65 is above the size where each GEMM is threaded by Eigen itself.
  const std::vector<Size> sizes = {{{}, 1, 1, 1},  {{}, 17, 33, 9},  {{}, 65, 1, 31},
                                   {{3}, 7, 13, 5}, {{2, 1}, 1, 6, 4}, {{}, 70, 67, 65}};
  const std::vector<Layout> layouts = {Layout::Contiguous, Layout::Transposed, Layout::Stepped};
  for (DType dtype : {DType::Float32, DType::Float64})
    for (const Size& s : sizes)
      for (Layout la : layouts)
        for (Layout lb : layouts) {
          INFO(dtype_name(dtype) << " batch " << shape_str(s.batch) << " " << s.m << "x" << s.k
                                 << "x" << s.n << " a " << layout_name(la) << " b "
                                 << layout_name(lb));
          Shape sa = s.batch, sb = s.batch;
          sa.insert(sa.end(), {s.m, s.k});
          sb.insert(sb.end(), {s.k, s.n});
          Tensor a = make_operand(sa, la, gen, dtype), b = make_operand(sb, lb, gen, dtype);
          REQUIRE(a.shape() == sa);
          REQUIRE(b.shape() == sb);
          Tensor out = matmul(a, b);
          Shape expected = s.batch;
          expected.insert(expected.end(), {s.m, s.n});
          REQUIRE(out.shape() == expected);
          CHECK(relative_error(out.to_vector<double>(), naive_matmul(a, b)) <
                (dtype == DType::Float32 ? 1e-5 : 1e-12));
        }
}

// --- gradients ---------------------------------------------------------------------------------

TEST_CASE("matmul: gradients by hand, summed over broadcast batch axes", "[matmul]") {
  // C = A @ B with A [2,3]: dA = dC @ B^T, dB = A^T @ dC.
  Tensor a = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor b = from_vector<double>({1, 0, 0, 1, 1, 1}, {3, 2}).requires_grad_();
  matmul(a, b).sum().backward();
  check_tensor(a.grad(), {2, 3}, {1, 1, 2, 1, 1, 2}, 0);
  check_tensor(b.grad(), {3, 2}, {5, 5, 7, 7, 9, 9}, 0);

  // A [2,2] shared by a batch of 3: its gradient sums the batch, d sum / dA[i,k] = sum_p,j B[p,k,j].
  Tensor w = ones({2, 2}, DType::Float64).requires_grad_();
  Tensor batch = arange(0, 12, 1, DType::Float64).reshape({3, 2, 2}).detach().requires_grad_();
  Tensor out = matmul(w, batch);
  REQUIRE(out.shape() == Shape{3, 2, 2});
  out.sum().backward();
  REQUIRE(w.grad().shape() == Shape{2, 2});
  // sum over p, j of B[p, k, j]: k = 0 -> 0+1+4+5+8+9 = 27, k = 1 -> 2+3+6+7+10+11 = 39.
  check_tensor(w.grad(), {2, 2}, {27, 39, 27, 39}, 0);
  check_tensor(batch.grad(), {3, 2, 2}, std::vector<double>(12, 2.0), 0);
}

TEST_CASE("matmul: gradcheck, including 1-D, transposed and batch-broadcast operands",
          "[matmul]") {
  Generator gen(45);
  auto leaf = [&](const Shape& shape) { return randn(shape, gen, DType::Float64).requires_grad_(); };
  auto mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  CHECK_GRADCHECK(mm, {leaf({3, 4}), leaf({4, 2})});
  CHECK_GRADCHECK(mm, {leaf({1, 1}), leaf({1, 3})});
  CHECK_GRADCHECK(mm, {leaf({4}), leaf({4, 3})});        // vector @ matrix
  CHECK_GRADCHECK(mm, {leaf({3, 4}), leaf({4})});        // matrix @ vector
  CHECK_GRADCHECK(mm, {leaf({5}), leaf({5})});           // vector @ vector -> 0-d
  CHECK_GRADCHECK(mm, {leaf({4}), leaf({2, 4, 3})});     // vector @ batch
  CHECK_GRADCHECK(mm, {leaf({2, 3, 4}), leaf({4})});     // batch @ vector
  CHECK_GRADCHECK(mm, {leaf({2, 1, 3, 4}), leaf({5, 4, 2})});  // batch broadcast both ways
  CHECK_GRADCHECK(mm, {leaf({3, 4}), leaf({2, 4, 2})});  // 2-D shared across a batch
  CHECK_GRADCHECK(mm, {leaf({3, 4}), randn({4, 2}, gen, DType::Float64)});  // only a needs grad
  // Only b: backward saves a only when b needs grad (and b only when a does), so each side
  // alone must reach its gradient; b's summed over the batch a broadcasts it to.
  CHECK_GRADCHECK(mm, {randn({3, 4}, gen, DType::Float64), leaf({4, 2})});
  CHECK_GRADCHECK(mm, {randn({2, 3, 4}, gen, DType::Float64), leaf({4, 2})});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return matmul(in[0].t(), in[1]); },
                  {leaf({4, 3}), leaf({4, 2})});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return matmul(in[0], in[1].t()); },
                  {leaf({3, 4}), leaf({2, 4})});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return matmul(in[0].slice(1, 0, 6, 2), in[1]); },
      {leaf({3, 6}), leaf({3, 2})});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return matmul(in[0], in[0].t()); },
                  {leaf({3, 4})});  // the same tensor on both sides
}

// --- matmul_into and head_matmul: per-head products written into an [N, H, e] tensor ------------

namespace {

// y[n, h, j] = sum_i x[n, h, i] * W[h, i, j] in double, x [N, H, d] (any strides), W [H, d, e].
std::vector<double> naive_head_matmul(const Tensor& x, const Tensor& W) {
  const int64_t rows = x.size(0), heads = x.size(1), d = x.size(2), e = W.size(2);
  const std::vector<double> vx = strided_values(x), vw = strided_values(W);
  std::vector<double> out(static_cast<size_t>(rows * heads * e), 0.0);
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < e; ++j) {
        double total = 0;
        for (int64_t i = 0; i < d; ++i)
          total += vx[(n * heads + h) * d + i] * vw[(h * d + i) * e + j];
        out[(n * heads + h) * e + j] = total;
      }
  return out;
}

}  // namespace

TEST_CASE("matmul_into: writes a product into strided rows and leaves the rest alone",
          "[matmul]") {
  Generator gen(46);
  Backend& cpu = backend_for(Device::cpu());
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    // Three [7, 5] products into the heads of a [7, 3, 5] tensor, the middle of a wider [7, 3, 6]
    // buffer whose last column must stay as it was.
    const Tensor a = randn({3, 7, 4}, gen, dtype), b = randn({3, 4, 5}, gen, dtype);
    const Tensor buffer = full({7, 3, 6}, 42, dtype);
    cpu.matmul_into(a, b, buffer.slice(2, 0, 5).permute({1, 0, 2}));
    CHECK(relative_error(buffer.slice(2, 0, 5).permute({1, 0, 2}).to_vector<double>(),
                         naive_matmul(a, b)) < (dtype == DType::Float32 ? 1e-6 : 1e-14));
    CHECK(buffer.slice(2, 5, 6).to_vector<double>() == std::vector<double>(21, 42.0));
    // K = 0: zeros, into the same view.
    cpu.matmul_into(ones({3, 7, 0}, dtype), ones({3, 0, 5}, dtype),
                    buffer.slice(2, 0, 5).permute({1, 0, 2}));
    CHECK(buffer.slice(2, 0, 5).to_vector<double>() == std::vector<double>(105, 0.0));
  }
  // An output whose rows are not contiguous is refused, naming the strides.
  const Tensor out = zeros({5, 7}).t();
  CHECK_THROWS_WITH(cpu.matmul_into(ones({7, 4}), ones({4, 5}), out),
                    Catch::Contains("output's rows must be contiguous"));
}

TEST_CASE("head_matmul: equals per-head products on awkward sizes, broadcast rows included",
          "[matmul]") {
  Generator gen(47);
  for (DType dtype : {DType::Float32, DType::Float64})
    for (int64_t rows : {1, 7, 70})
      for (int64_t heads : {1, 3})
        for (bool broadcast : {false, true}) {
          INFO(dtype_name(dtype) << " rows " << rows << " heads " << heads
                                 << (broadcast ? " broadcast" : ""));
          const int64_t d = 5, e = 9;
          const Tensor x = broadcast
                               ? randn({rows, 1, d}, gen, dtype).expand({rows, heads, d})
                               : randn({rows, heads, d}, gen, dtype);
          const Tensor W = randn({heads, d, e}, gen, dtype);
          const Tensor y = head_matmul(x, W);
          REQUIRE(y.shape() == Shape{rows, heads, e});
          CHECK(y.is_contiguous());
          CHECK(relative_error(y.to_vector<double>(), naive_head_matmul(x, W)) <
                (dtype == DType::Float32 ? 1e-6 : 1e-14));
        }
  CHECK_THROWS_WITH(head_matmul(ones({4, 3, 5}), ones({2, 5, 6})),
                    Catch::Contains("head_matmul: x [4, 3, 5] and W [2, 5, 6]"));
  CHECK_THROWS_WITH(head_matmul(ones({4, 5}), ones({1, 5, 6})),
                    Catch::Contains("must be [N, H, d] and [H, d, e]"));
}

TEST_CASE("head_matmul: gradcheck, with the rows broadcast over the heads and strided weights",
          "[matmul]") {
  Generator gen(48);
  auto leaf = [&](const Shape& shape) { return randn(shape, gen, DType::Float64).requires_grad_(); };
  auto hm = [](const std::vector<Tensor>& in) { return head_matmul(in[0], in[1]); };
  CHECK_GRADCHECK(hm, {leaf({4, 3, 5}), leaf({3, 5, 2})});
  CHECK_GRADCHECK(hm, {leaf({1, 1, 1}), leaf({1, 1, 1})});
  // One row for every head: the gradient is summed over the heads by the expand.
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return head_matmul(in[0].unsqueeze(1).expand({in[0].size(0), 3, in[0].size(1)}), in[1]);
      },
      {leaf({6, 4}), leaf({3, 4, 2})});
  // W read through a transposed view (as backward reads it), and only one input needing grad.
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return head_matmul(in[0], in[1].transpose(1, 2)); },
      {leaf({5, 2, 3}), leaf({2, 4, 3})});
  CHECK_GRADCHECK(hm, {leaf({4, 3, 5}), randn({3, 5, 2}, gen, DType::Float64)});
  // Only W (a constant table's projections): backward keeps x only when W needs grad.
  CHECK_GRADCHECK(hm, {randn({4, 3, 5}, gen, DType::Float64), leaf({3, 5, 2})});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return head_matmul(in[0].unsqueeze(1).expand({in[0].size(0), 3, in[0].size(1)}), in[1]);
      },
      {randn({6, 4}, gen, DType::Float64), leaf({3, 4, 2})});
}
