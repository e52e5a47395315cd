// Fused causal attention (causal_attention and Backend::attention): float64 gradchecks, the
// forward, the pattern (asked for) and the softmax statistics (the backward's) and the q/k/v
// gradients against the matmul / masked_fill / softmax composition on awkward sizes,
// independence of the thread count, and the input checks.
#include <catch2/catch.hpp>

#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels/backend.h"
#include "op_test_util.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using tg::testing::relative_error;

namespace {

// [Tq, T], 1 where key j comes after query i's position T - Tq + i.
Tensor causal_mask(int64_t queries, int64_t keys) {
  std::vector<int64_t> mask(static_cast<size_t>(queries * keys), 0);
  for (int64_t i = 0; i < queries; ++i)
    for (int64_t j = keys - queries + i + 1; j < keys; ++j) mask[i * keys + j] = 1;
  return from_vector(mask, {queries, keys});
}

// The unfused composition over [B, H, T, Dh]: the softmax probabilities [B, H, Tq, T] ...
Tensor reference_pattern(const Tensor& q, const Tensor& k, double scale) {
  const Tensor scores =
      q.permute({0, 2, 1, 3}).matmul(k.permute({0, 2, 3, 1})) * scale;  // [B, H, Tq, T]
  return softmax(masked_fill(scores, causal_mask(q.size(1), k.size(1)), -INFINITY), -1);
}

// ... and the output [B, Tq, H, Dh].
Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  return reference_pattern(q, k, scale).matmul(v.permute({0, 2, 1, 3})).permute({0, 2, 1, 3});
}

struct Sizes {
  int64_t batch, queries, keys, heads, head_size;
};

struct Results {
  std::vector<double> z, dq, dk, dv;
};

// z = f(q, k, v) and the gradients of sum(z * weights), for float leaves built from the inputs.
template <typename F>
Results run(F f, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& weights) {
  Tensor lq = q.clone().requires_grad_(), lk = k.clone().requires_grad_(),
         lv = v.clone().requires_grad_();
  const Tensor z = f(lq, lk, lv);
  sum(z * weights).backward();
  return {z.contiguous().to_vector<double>(), lq.grad().to_vector<double>(),
          lk.grad().to_vector<double>(), lv.grad().to_vector<double>()};
}

// Restores the OpenMP thread count when a test ends, even when an assertion throws.
struct ThreadCountRestorer {
  int saved = omp_get_max_threads();
  ~ThreadCountRestorer() { omp_set_num_threads(saved); }
};

}  // namespace

TEST_CASE("attention_op: gradcheck in float64 for Tq = T, 1 and 2", "[attention_op]") {
  Generator gen(71);
  const int64_t b = 2, t = 5, h = 3, dh = 7;
  for (const int64_t tq : {t, int64_t{1}, int64_t{2}}) {
    INFO("Tq " << tq);
    const Tensor q = randn({b, tq, h, dh}, gen, DType::Float64).requires_grad_();
    const Tensor k = randn({b, t, h, dh}, gen, DType::Float64).requires_grad_();
    const Tensor v = randn({b, t, h, dh}, gen, DType::Float64).requires_grad_();
    CHECK_GRADCHECK(
        [](const std::vector<Tensor>& in) { return causal_attention(in[0], in[1], in[2], 0.7); },
        {q, k, v});
  }
  // Non-contiguous inputs: q, k, v given as [B, H, T, Dh] and permuted into place.
  const Tensor q = randn({b, h, 3, dh}, gen, DType::Float64).requires_grad_();
  const Tensor k = randn({b, h, t, dh}, gen, DType::Float64).requires_grad_();
  const Tensor v = randn({b, h, t, dh}, gen, DType::Float64).requires_grad_();
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return causal_attention(in[0].permute({0, 2, 1, 3}), in[1].permute({0, 2, 1, 3}),
                                in[2].permute({0, 2, 1, 3}), 1 / std::sqrt(7.0));
      },
      {q, k, v});
}

TEST_CASE("attention_op: float32 output, pattern and gradients match the composition",
          "[attention_op]") {
  Generator gen(72);
  const std::vector<Sizes> cases = {{37, 1, 3, 4, 32}, {37, 3, 3, 4, 32}, {5, 7, 7, 2, 9},
                                    {5, 4, 7, 2, 9},   {2, 3, 70, 1, 5},  {2, 70, 70, 1, 5}};
  for (const Sizes& n : cases) {
    for (const double scale : {1 / std::sqrt(static_cast<double>(n.head_size)), 30.0}) {
      INFO("B " << n.batch << " Tq " << n.queries << " T " << n.keys << " H " << n.heads << " Dh "
                << n.head_size << " scale " << scale);
      const Tensor q = randn({n.batch, n.queries, n.heads, n.head_size}, gen);
      const Tensor k = randn({n.batch, n.keys, n.heads, n.head_size}, gen);
      const Tensor v = randn({n.batch, n.keys, n.heads, n.head_size}, gen);
      const Tensor weights = randn(q.shape(), gen);
      auto fused = [scale](const Tensor& a, const Tensor& b, const Tensor& c) {
        return causal_attention(a, b, c, scale);
      };
      auto unfused = [scale](const Tensor& a, const Tensor& b, const Tensor& c) {
        return reference_attention(a, b, c, scale);
      };
      const Results got = run(fused, q, k, v, weights), ref = run(unfused, q, k, v, weights);
      // Large scores (scale 30) make the softmax nearly one-hot and its gradient ill-conditioned,
      // so float32 rounding in the scores shows more there.
      const double tol = scale < 1 ? 1e-5 : 1e-4;
      CHECK(relative_error(got.z, ref.z) < tol);
      CHECK(relative_error(got.dq, ref.dq) < tol);
      CHECK(relative_error(got.dk, ref.dk) < tol);
      CHECK(relative_error(got.dv, ref.dv) < tol);

      // Asked for, the pattern is the softmax, with exact zeros where masked, and asking
      // changes nothing else.
      Tensor pattern;
      const Tensor z = causal_attention(q, k, v, scale, &pattern);
      CHECK(z.contiguous().to_vector<double>() == got.z);
      REQUIRE(pattern.shape() == Shape{n.batch, n.heads, n.queries, n.keys});
      CHECK(pattern.grad_fn() == nullptr);
      const std::vector<double> p = pattern.to_vector<double>();
      CHECK(relative_error(p, reference_pattern(q, k, scale).contiguous().to_vector<double>()) <
            1e-5);
      for (size_t e = 0; e < p.size(); ++e) {
        const int64_t j = static_cast<int64_t>(e) % n.keys;
        const int64_t i = static_cast<int64_t>(e) / n.keys % n.queries;
        if (j > n.keys - n.queries + i) REQUIRE(p[e] == 0);
      }

      // The primitive's statistics, what the backward computes the pattern from: each row's
      // largest scaled score and its sum of exp(score - largest).
      Tensor z_again, stats;
      backend_for(Device::cpu())
          .attention(q.reshape({n.batch * n.queries, n.heads, -1}),
                     k.reshape({n.batch * n.keys, n.heads, -1}),
                     v.reshape({n.batch * n.keys, n.heads, -1}),
                     arange(n.batch * n.queries).reshape({n.batch, n.queries}),
                     arange(n.batch * n.keys).reshape({n.batch, n.keys}), scale, false,
                     Tensor(), z_again, stats, nullptr);
      REQUIRE(stats.shape() == Shape{n.batch, n.heads, n.queries, 2});
      const Tensor scores = masked_fill(
          q.permute({0, 2, 1, 3}).matmul(k.permute({0, 2, 3, 1})).to(DType::Float64) * scale,
          causal_mask(n.queries, n.keys), -INFINITY);  // [B, H, Tq, T]
      const Tensor peak = max(scores, {-1}, /*keepdim=*/true);
      CHECK(relative_error(stats.select(3, 0).contiguous().to_vector<double>(),
                           peak.squeeze(-1).to_vector<double>()) < 1e-5);
      CHECK(relative_error(stats.select(3, 1).contiguous().to_vector<double>(),
                           sum(exp(scores - peak), {-1}).to_vector<double>()) < 1e-5);
    }
  }
}

TEST_CASE("attention_op: results do not depend on the number of threads", "[attention_op]") {
  ThreadCountRestorer restore;
  Generator gen(73);
  // 61 batch rows of H Tq T Dh = 8192 multiply-adds: split across threads, unevenly.
  const Tensor q = randn({61, 8, 4, 32}, gen), k = randn({61, 8, 4, 32}, gen),
               v = randn({61, 8, 4, 32}, gen), weights = randn({61, 8, 4, 32}, gen);
  auto fused = [](const Tensor& a, const Tensor& b, const Tensor& c) {
    return causal_attention(a, b, c, 0.25);
  };
  omp_set_num_threads(1);
  const Results one = run(fused, q, k, v, weights);
  for (const int threads : {2, 3}) {
    INFO(threads << " threads");
    omp_set_num_threads(threads);
    const Results many = run(fused, q, k, v, weights);
    CHECK(many.z == one.z);
    CHECK(many.dq == one.dq);
    CHECK(many.dk == one.dk);
    CHECK(many.dv == one.dv);
  }
}

TEST_CASE("attention_op: no queries gives an empty output and zero key gradients",
          "[attention_op]") {
  Generator gen(74);
  // (zeros, not randn: fill_random rejects [2, 0, 3, 4], which is_contiguous() calls strided.)
  Tensor q = zeros({2, 0, 3, 4}).requires_grad_();
  Tensor k = randn({2, 5, 3, 4}, gen).requires_grad_(), v = randn({2, 5, 3, 4}, gen).requires_grad_();
  const Tensor z = causal_attention(q, k, v, 0.5);
  CHECK(z.shape() == Shape{2, 0, 3, 4});
  sum(z).backward();
  CHECK(q.grad().shape() == q.shape());
  for (const double g : k.grad().to_vector<double>()) CHECK(g == 0);
  for (const double g : v.grad().to_vector<double>()) CHECK(g == 0);
  // Without an input that requires grad, nothing is recorded.
  CHECK(causal_attention(q.detach(), k.detach(), v.detach(), 0.5).grad_fn() == nullptr);
}

TEST_CASE("attention_op: rejects bad shapes, dtypes and more queries than keys",
          "[attention_op]") {
  const Tensor q = zeros({2, 5, 3, 7}), k = zeros({2, 5, 3, 7});
  REQUIRE_TG_ERROR(causal_attention(zeros({2, 5, 21}), k, k, 1),
                   Equals("causal_attention: q [2, 5, 21], k [2, 5, 3, 7] and v [2, 5, 3, 7]: "
                          "must all be 4-D [B, T, H, Dh]"));
  REQUIRE_TG_ERROR(causal_attention(q, k, zeros({2, 4, 3, 7}), 1),
                   Equals("causal_attention: k [2, 5, 3, 7] and v [2, 4, 3, 7]: shapes differ"));
  for (const Shape& bad : {Shape{1, 5, 3, 7}, Shape{2, 5, 2, 7}, Shape{2, 5, 3, 8}}) {
    INFO(shape_str(bad));
    REQUIRE_TG_ERROR(causal_attention(zeros(bad), k, k, 1),
                     Equals("causal_attention: q " + shape_str(bad) +
                            " and k [2, 5, 3, 7]: batch, heads and head size (axes 0, 2, 3) "
                            "differ"));
  }
  REQUIRE_TG_ERROR(causal_attention(zeros({2, 6, 3, 7}), k, k, 1),
                   Equals("causal_attention: q [2, 6, 3, 7] and k [2, 5, 3, 7]: more queries "
                          "(6) than keys (5)"));
  REQUIRE_TG_ERROR(causal_attention(q, k.to(DType::Float64), k, 1),
                   Contains("causal_attention:") && Contains("dtypes differ"));
  REQUIRE_TG_ERROR(causal_attention(zeros({2, 5, 3, 7}, DType::Int64), k, k, 1),
                   Contains("causal_attention: needs a float tensor, got int64"));
}

// A residual table in table_attention: the bits of embedding(residual, q_rows) added to the
// attention's output afterwards (x + attention(x)), forward and backward, strided or not; and the
// shapes it refuses.
TEST_CASE("attention_op: table_attention's residual equals a gather and an add",
          "[attention_op]") {
  Generator gen(95);
  const int64_t batch = 41, queries = 2, keys = 3, heads = 4, head_size = 8, width = 19, rows = 9;
  std::vector<int64_t> q_index(batch * queries), kv_index(batch * keys);
  for (size_t i = 0; i < q_index.size(); ++i) q_index[i] = static_cast<int64_t>(i * 5 % rows);
  for (size_t i = 0; i < kv_index.size(); ++i) kv_index[i] = static_cast<int64_t>(i * 3 % rows);
  const Tensor q_rows = from_vector(q_index, {batch, queries});
  const Tensor kv_rows = from_vector(kv_index, {batch, keys});
  const Tensor dz = randn({batch, queries, width}, gen);
  for (bool strided : {false, true}) {
    INFO((strided ? "strided residual" : "contiguous residual"));
    auto run = [&](bool fused) {
      Generator g(96);
      Tensor qt = randn({rows, heads, head_size}, g).requires_grad_();
      Tensor kt = randn({rows, heads, head_size}, g).requires_grad_();
      Tensor vt = randn({rows, heads, width}, g).requires_grad_();
      // The leaf, and the [rows, width] residual read from it (a transposed view when strided).
      const Tensor res = strided ? randn({width, rows}, g).requires_grad_()
                                 : randn({rows, width}, g).requires_grad_();
      const Tensor residual = strided ? res.t() : res;
      const Tensor z =
          fused ? table_attention(qt, kt, vt, q_rows, kv_rows, 0.3, true, residual)
                : embedding(residual, q_rows) +
                      table_attention(qt, kt, vt, q_rows, kv_rows, 0.3, true);
      z.backward(dz);
      return std::vector<std::vector<float>>{z.to_vector<float>(), qt.grad().to_vector<float>(),
                                             kt.grad().to_vector<float>(),
                                             vt.grad().to_vector<float>(),
                                             res.grad().to_vector<float>()};
    };
    const auto fused = run(true), composed = run(false);
    for (size_t i = 0; i < fused.size(); ++i) {
      INFO("output " << i << " (z, dq, dk, dv, dresidual)");
      CHECK(fused[i] == composed[i]);
    }
  }
  const Tensor qt = randn({rows, heads, head_size}, gen), vt = randn({rows, heads, width}, gen);
  REQUIRE_TG_ERROR(
      table_attention(qt, qt, vt, q_rows, kv_rows, 1, false, randn({rows, width}, gen)),
      "table_attention: a residual needs sum_heads (an output [B, Tq, Dv])");
  REQUIRE_TG_ERROR(
      table_attention(qt, qt, vt, q_rows, kv_rows, 1, true, randn({rows, width + 1}, gen)),
      "table_attention: residual [9, 20] must be [9, 19]: a row of the values' width per "
      "q_table row");
  REQUIRE_TG_ERROR(table_attention(qt, qt, vt, q_rows, kv_rows, 1, true,
                                   randn({rows, width}, gen, DType::Float64)),
                   Contains("table_attention:") && Contains("dtypes differ"));
}

// table_attention against the gathers it replaces: embedding() of each table, then
// causal_attention. The rows repeat across examples, as tokens do, so the backward's
// scatter-add is exercised.
TEST_CASE("attention_op: table_attention equals gathering the rows first", "[attention_op]") {
  Generator gen(91);
  const int64_t batch = 53, queries = 1, keys = 3, heads = 4, head_size = 8, rows = 7;
  std::vector<int64_t> q_index(batch * queries), kv_index(batch * keys);
  for (size_t i = 0; i < q_index.size(); ++i) q_index[i] = static_cast<int64_t>(i * 5 % 3);
  for (size_t i = 0; i < kv_index.size(); ++i) kv_index[i] = static_cast<int64_t>(i * 3 % rows);
  const Tensor q_rows = from_vector(q_index, {batch, queries});
  const Tensor kv_rows = from_vector(kv_index, {batch, keys});
  const Tensor dz = randn({batch, queries, heads, head_size}, gen);
  const double scale = 0.35;
  auto grads = [&](bool fused, DType dtype) {
    Generator g(92);
    Tensor qt = randn({3, heads, head_size}, g, dtype).requires_grad_();
    Tensor kt = randn({rows, heads, head_size}, g, dtype).requires_grad_();
    Tensor vt = randn({rows, heads, head_size}, g, dtype).requires_grad_();
    const Tensor z = fused ? table_attention(qt, kt, vt, q_rows, kv_rows, scale)
                           : causal_attention(embedding(qt, q_rows), embedding(kt, kv_rows),
                                              embedding(vt, kv_rows), scale);
    z.backward(dz.to(dtype));
    return std::vector<std::vector<double>>{z.to_vector<double>(), qt.grad().to_vector<double>(),
                                            kt.grad().to_vector<double>(),
                                            vt.grad().to_vector<double>()};
  };
  const auto fused = grads(true, DType::Float32), gathered = grads(false, DType::Float32);
  for (size_t i = 0; i < fused.size(); ++i) {
    INFO("output " << i << " (z, dq, dk, dv)");
    CHECK(relative_error(fused[i], gathered[i]) < 1e-5);
  }
  // Values wider than the heads, summed over the heads: the first layer's value table already
  // multiplied by W_O. Against the per-head output summed by sum().
  Generator g(93);
  Tensor qt = randn({3, heads, head_size}, g).requires_grad_();
  Tensor kt = randn({rows, heads, head_size}, g).requires_grad_();
  Tensor wide = randn({rows, heads, 19}, g).requires_grad_();
  const Tensor dsum = randn({batch, queries, 19}, g);
  auto summed = [&](bool fused) {
    for (Tensor* t : {&qt, &kt, &wide}) t->zero_grad();
    const Tensor z = fused ? table_attention(qt, kt, wide, q_rows, kv_rows, scale, true)
                           : sum(table_attention(qt, kt, wide, q_rows, kv_rows, scale), {2});
    z.backward(dsum);
    return std::vector<std::vector<double>>{z.to_vector<double>(), qt.grad().to_vector<double>(),
                                            kt.grad().to_vector<double>(),
                                            wide.grad().to_vector<double>()};
  };
  const auto sum_fused = summed(true), sum_ref = summed(false);
  for (size_t i = 0; i < sum_fused.size(); ++i) {
    INFO("summed over heads, output " << i << " (z, dq, dk, dv)");
    CHECK(relative_error(sum_fused[i], sum_ref[i]) < 1e-5);
  }

  // float64 gradcheck of the tables themselves, per head and summed over the heads.
  const Tensor q64 = randn({3, 2, 5}, gen, DType::Float64).requires_grad_();
  const Tensor k64 = randn({4, 2, 5}, gen, DType::Float64).requires_grad_();
  const Tensor v64 = randn({4, 2, 6}, gen, DType::Float64).requires_grad_();
  const Tensor small_q = from_vector<int64_t>({2, 0, 2, 1, 1, 2}, {3, 2});
  const Tensor small_kv = from_vector<int64_t>({0, 3, 3, 1, 2, 0, 3, 3, 1}, {3, 3});
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return table_attention(in[0], in[1], in[2], small_q, small_kv, 0.7);
      },
      {q64, k64, v64});
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return table_attention(in[0], in[1], in[2], small_q, small_kv, 0.7, true);
      },
      {q64, k64, v64});
  // With a residual table (a row per q table row, of the values' width) and its gradient.
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return table_attention(in[0], in[1], in[2], small_q, small_kv, 0.7, true, in[3]);
      },
      {q64, k64, v64, randn({3, 6}, gen, DType::Float64).requires_grad_()});
  REQUIRE_TG_ERROR(table_attention(q64, k64, v64, small_q, from_vector<int64_t>({0, 9, 3, 1, 2, 0, 3, 3, 1}, {3, 3}), 1.0),
                   "attention: key row 9 at position 1 is outside the table's 4 rows");
}

namespace {

// The attention layer on a table as nn::Attention composed it before table_attention_layer:
// head_matmul for each projection of the table's rows (one broadcast view for the three), the
// values through W_O, then table_attention.
Tensor composed_attention_layer(const Tensor& table, const Tensor& W_Q, const Tensor& W_K,
                                const Tensor& W_V, const Tensor& W_O, const Tensor& q_rows,
                                const Tensor& kv_rows, double scale, const Tensor& residual,
                                Tensor* pattern) {
  const Tensor x = table.unsqueeze(1).expand({table.size(0), W_Q.size(0), table.size(1)});
  return table_attention(head_matmul(x, W_Q), head_matmul(x, W_K),
                         head_matmul(head_matmul(x, W_V), W_O), q_rows, kv_rows, scale, true,
                         residual, pattern);
}

enum class ResidualKind { None, Table, Separate };
const char* residual_name(ResidualKind kind) {
  return kind == ResidualKind::None ? "no residual"
         : kind == ResidualKind::Table ? "the table as the residual"
                                       : "a separate, transposed residual";
}

}  // namespace

TEST_CASE("attention_op: table_attention_layer equals its composition to the bit",
          "[attention_op]") {
  // Awkward sizes; table rows repeat across examples, as tokens do.
  const int64_t batch = 23, keys = 3, rows = 9, d_model = 10, heads = 3, d_head = 6;
  Generator gen(97);
  for (const int64_t queries : {int64_t{1}, int64_t{2}})
    for (const DType dtype : {DType::Float32, DType::Float64})
      for (const ResidualKind kind :
           {ResidualKind::None, ResidualKind::Table, ResidualKind::Separate}) {
        INFO("Tq " << queries << ", " << dtype_name(dtype) << ", " << residual_name(kind));
        std::vector<int64_t> q_index(batch * queries), kv_index(batch * keys);
        for (size_t i = 0; i < q_index.size(); ++i)
          q_index[i] = static_cast<int64_t>(i * 5 % rows);
        for (size_t i = 0; i < kv_index.size(); ++i)
          kv_index[i] = static_cast<int64_t>(i * 3 % rows);
        const Tensor q_rows = from_vector(q_index, {batch, queries});
        const Tensor kv_rows = from_vector(kv_index, {batch, keys});
        const Tensor dz = randn({batch, queries, d_model}, gen, dtype);
        auto run = [&](bool fused) {
          Generator g(98);
          std::vector<Tensor> leaves = {randn({rows, d_model}, g, dtype),
                                        randn({heads, d_model, d_head}, g, dtype),
                                        randn({heads, d_model, d_head}, g, dtype),
                                        randn({heads, d_model, d_head}, g, dtype),
                                        randn({heads, d_head, d_model}, g, dtype),
                                        randn({d_model, rows}, g, dtype)};
          for (Tensor& t : leaves) t.requires_grad_();
          const Tensor residual = kind == ResidualKind::None    ? Tensor()
                                  : kind == ResidualKind::Table ? leaves[0]
                                                                : leaves[5].t();
          const auto layer = fused ? table_attention_layer : composed_attention_layer;
          Tensor pattern;
          const Tensor z = layer(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], q_rows,
                                 kv_rows, 0.4, residual, &pattern);
          z.backward(dz);
          std::vector<std::vector<double>> out = {z.to_vector<double>()};
          for (const Tensor& t : leaves)
            out.push_back(t.grad().defined() ? t.grad().to_vector<double>()
                                             : std::vector<double>());
          out.push_back(pattern.to_vector<double>());
          return out;
        };
        const auto fused = run(true), composed = run(false);
        for (size_t i = 0; i < fused.size(); ++i) {
          INFO("output " << i << " (z, dtable, dW_Q, dW_K, dW_V, dW_O, dresidual, pattern)");
          CHECK(fused[i] == composed[i]);
        }
        CHECK(fused[6].empty() == (kind != ResidualKind::Separate));
      }
}

TEST_CASE("attention_op: table_attention_layer gradcheck in float64", "[attention_op]") {
  Generator gen(99);
  const Tensor table = randn({5, 4}, gen, DType::Float64).requires_grad_();
  const Tensor W_Q = randn({2, 4, 3}, gen, DType::Float64).requires_grad_();
  const Tensor W_K = randn({2, 4, 3}, gen, DType::Float64).requires_grad_();
  const Tensor W_V = randn({2, 4, 3}, gen, DType::Float64).requires_grad_();
  const Tensor W_O = randn({2, 3, 4}, gen, DType::Float64).requires_grad_();
  const Tensor residual = randn({5, 4}, gen, DType::Float64).requires_grad_();
  const Tensor q_rows = from_vector<int64_t>({4, 0, 2, 1, 1, 4}, {3, 2});
  const Tensor kv_rows = from_vector<int64_t>({0, 3, 4, 1, 2, 0, 3, 3, 1}, {3, 3});
  for (const ResidualKind kind :
       {ResidualKind::None, ResidualKind::Table, ResidualKind::Separate}) {
    INFO(residual_name(kind));
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          const Tensor r = kind == ResidualKind::None    ? Tensor()
                           : kind == ResidualKind::Table ? in[0]
                                                         : in[5];
          return table_attention_layer(in[0], in[1], in[2], in[3], in[4], q_rows, kv_rows, 0.6,
                                       r);
        },
        {table, W_Q, W_K, W_V, W_O, residual});
  }
}

TEST_CASE("attention_op: table_attention_layer computes only the gradients asked for",
          "[attention_op]") {
  Generator gen(101);
  const Tensor q_rows = from_vector<int64_t>({4, 0, 2}, {3, 1});
  const Tensor kv_rows = from_vector<int64_t>({0, 3, 4, 1, 2, 0, 3, 3, 1}, {3, 3});
  const std::vector<Tensor> values = {randn({5, 4}, gen), randn({2, 4, 3}, gen),
                                      randn({2, 4, 3}, gen), randn({2, 4, 3}, gen),
                                      randn({2, 3, 4}, gen), randn({5, 4}, gen)};
  const Tensor dz = randn({3, 1, 4}, gen);
  // The gradients with every input requiring one, then with each alone: the same values.
  auto grads = [&](int only) {
    std::vector<Tensor> in;
    for (size_t i = 0; i < values.size(); ++i)
      in.push_back(only < 0 || static_cast<int>(i) == only ? values[i].clone().requires_grad_()
                                                           : values[i]);
    table_attention_layer(in[0], in[1], in[2], in[3], in[4], q_rows, kv_rows, 0.5, in[5])
        .backward(dz);
    std::vector<std::vector<float>> out;
    for (const Tensor& t : in)
      out.push_back(t.grad().defined() ? t.grad().to_vector<float>() : std::vector<float>());
    return out;
  };
  const auto all = grads(-1);
  for (int only = 0; only < 6; ++only) {
    INFO("only input " << only << " (table, W_Q, W_K, W_V, W_O, residual) requires grad");
    const auto one = grads(only);
    for (int i = 0; i < 6; ++i) CHECK(one[i] == (i == only ? all[i] : std::vector<float>()));
  }
}

TEST_CASE("attention_op: table_attention_layer rejects shapes that do not fit, naming them",
          "[attention_op]") {
  Generator gen(100);
  const Tensor table = randn({5, 4}, gen), W = randn({2, 4, 3}, gen), W_O = randn({2, 3, 4}, gen);
  const Tensor q_rows = from_vector<int64_t>({4, 0, 2}, {3, 1});
  const Tensor kv_rows = from_vector<int64_t>({0, 3, 4, 1, 2, 0, 3, 3, 1}, {3, 3});
  REQUIRE_TG_ERROR(table_attention_layer(table.reshape({5, 2, 2}), W, W, W, W_O, q_rows, kv_rows,
                                         1),
                   "table_attention_layer: table [5, 2, 2] must be [rows, d_model]");
  REQUIRE_TG_ERROR(
      table_attention_layer(table, W, randn({2, 4, 2}, gen), W, W_O, q_rows, kv_rows, 1),
      "table_attention_layer: W_Q [2, 4, 3], W_K [2, 4, 2] and W_V [2, 4, 3] must all be "
      "[H, d_model = 4, d_head]");
  REQUIRE_TG_ERROR(
      table_attention_layer(table, W, W, W, randn({3, 3, 4}, gen), q_rows, kv_rows, 1),
      "table_attention_layer: W_O [3, 3, 4] must be [H = 2, d_head = 3, d_out]");
  REQUIRE_TG_ERROR(
      table_attention_layer(table, W, W, W, W_O, q_rows, kv_rows, 1, randn({5, 3}, gen)),
      "table_attention_layer: residual [5, 3] must be [5, 4]: a row of W_O's width per table "
      "row");
  REQUIRE_TG_ERROR(
      table_attention_layer(table, W, W, W, W_O, q_rows.to(DType::Float32), kv_rows, 1),
      "table_attention_layer: row indices must be int64 [B, T] on cpu, got float32 [3, 1]");
  REQUIRE_TG_ERROR(table_attention_layer(table, W, W, W.to(DType::Float64), W_O, q_rows,
                                         kv_rows, 1),
                   Contains("table_attention_layer:") && Contains("dtypes differ"));
}
