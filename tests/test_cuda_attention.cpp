// CUDA fused causal attention (kernels/cuda/attention.cu) against the CPU backend: z, the softmax
// statistics, the pattern (and that not asking for it changes nothing else) and the three table
// gradients, through Backend::attention directly and through the autograd ops
// (table_attention, causal_attention), with dense rows, distinct rows in a shuffled order (some
// table rows unread) and the first layer's shared (position, token) rows; Tq < T, Dv != Dh,
// sum_heads on and off, T = 1, 5, 17, B = 1, 3, H = 1, 4, float32 and float64, strided inputs;
// then the one-kernel paths (T <= 64; one query of T <= 32 a kernel of its own) and the
// multi-kernel ones (set_fused_attention(false)) against the CPU and each other on T = 1, 3, 5,
// 17, 32, 33, 64 and 65 (beyond the one-kernel paths), H = 1 to 9, Dh = 1, 7, 32, 128, with and
// without a residual table; the residual against a gather
// and an add, bit for bit; then run-to-run determinism, empty inputs and the row-index and
// dtype errors. Every case skips visibly without a GPU.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cuda_compare.h"
#include "kernels/backend.h"
#include "kernels/cuda/attention.h"
#include "op_test_util.h"
#include "test_cuda_support.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using tg::testing::check_matches_cpu;
using tg::testing::relative_error;
using tg::testing::tolerance_for;

namespace {

const Device kGpu = Device::cuda(0);
const Device kCpu = Device::cpu();

// How the examples' rows index the tables.
enum class Rows {
  Dense,     // row b * T + t: dense q, k, v viewed as tables
  Shuffled,  // distinct rows in a shuffled order, two table rows that no example reads
  Shared,    // the first layer's tables: row t * V + token[b, t], shared between examples
};

const char* rows_name(Rows rows) {
  switch (rows) {
    case Rows::Dense: return "dense";
    case Rows::Shuffled: return "shuffled";
    case Rows::Shared: return "shared";
  }
  return "?";
}

constexpr int64_t kVocab = 2;  // few tokens, so that examples share rows

struct Sizes {
  int64_t batch, queries, keys, heads, head_size, value_size;  // B, Tq, T, H, Dh, Dv
};

const std::vector<Sizes> kSizes = {{1, 1, 1, 1, 3, 3},  {3, 5, 5, 4, 8, 8},  {3, 2, 5, 4, 8, 5},
                                   {1, 17, 17, 1, 3, 7}, {3, 4, 17, 4, 5, 2}, {3, 1, 17, 1, 4, 4}};

struct Inputs {
  Tensor q, k, v, q_rows, kv_rows;
  Tensor residual;  // [Rq, Dv]: a residual stream's row per q table row, for sum_heads
  int64_t q_table_rows = 0, kv_table_rows = 0;
};

// Row indices [B, T] on `device`; `strided` gives the transpose of a contiguous [T, B].
Tensor rows_tensor(const std::vector<int64_t>& rows, int64_t batch, int64_t length, bool strided,
                   Device device) {
  if (!strided) return from_vector(rows, {batch, length}).to(device);
  std::vector<int64_t> transposed(rows.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < length; ++t) transposed[t * batch + b] = rows[b * length + t];
  return from_vector(transposed, {length, batch}).to(device).t();
}

// The same random tables and rows on any device, for one seed. `strided` makes every input a
// non-contiguous view (the tables [H, R, D] permuted to [R, H, D]).
Inputs make_inputs(const Sizes& n, Rows mode, DType dtype, uint64_t seed, bool strided,
                   Device device) {
  std::vector<int64_t> q_rows(n.batch * n.queries), kv_rows(n.batch * n.keys);
  Inputs in;
  std::mt19937_64 rng(seed);
  if (mode == Rows::Shared) {
    for (int64_t b = 0; b < n.batch; ++b)
      for (int64_t t = 0; t < n.keys; ++t)
        kv_rows[b * n.keys + t] = t * kVocab + static_cast<int64_t>(rng() % kVocab);
    // The query at position T - Tq + i reads its position's row of its own table.
    for (int64_t b = 0; b < n.batch; ++b)
      for (int64_t i = 0; i < n.queries; ++i)
        q_rows[b * n.queries + i] = kv_rows[b * n.keys + n.keys - n.queries + i];
    in.q_table_rows = in.kv_table_rows = n.keys * kVocab;
  } else {
    const int64_t spare = mode == Rows::Shuffled ? 2 : 0;
    in.q_table_rows = n.batch * n.queries + spare;
    in.kv_table_rows = n.batch * n.keys + spare;
    for (auto* rows : {&q_rows, &kv_rows}) {
      std::vector<int64_t> order(rows->size() + spare);
      for (size_t r = 0; r < order.size(); ++r) order[r] = static_cast<int64_t>(r);
      if (mode == Rows::Shuffled) std::shuffle(order.begin(), order.end(), rng);
      std::copy_n(order.begin(), rows->size(), rows->begin());
    }
  }
  Generator gen(seed);
  const auto table = [&](int64_t rows, int64_t width) {
    if (!strided) return randn({rows, n.heads, width}, gen, dtype).to(device);
    return randn({n.heads, rows, width}, gen, dtype).to(device).permute({1, 0, 2});
  };
  in.q = table(in.q_table_rows, n.head_size);
  in.k = table(in.kv_table_rows, n.head_size);
  in.v = table(in.kv_table_rows, n.value_size);
  in.residual = strided ? randn({n.value_size, in.q_table_rows}, gen, dtype).to(device).t()
                        : randn({in.q_table_rows, n.value_size}, gen, dtype).to(device);
  in.q_rows = rows_tensor(q_rows, n.batch, n.queries, strided, device);
  in.kv_rows = rows_tensor(kv_rows, n.batch, n.keys, strided, device);
  return in;
}

Shape z_shape(const Sizes& n, bool sum_heads) {
  return sum_heads ? Shape{n.batch, n.queries, n.value_size}
                   : Shape{n.batch, n.queries, n.heads, n.value_size};
}

// Random dz of z's shape, the same on every device for one seed (strided: the axes reversed).
Tensor make_dz(const Shape& shape, DType dtype, uint64_t seed, bool strided, Device device) {
  Generator gen(seed + 1000);
  if (!strided) return randn(shape, gen, dtype).to(device);
  Shape reversed(shape.rbegin(), shape.rend());
  std::vector<int64_t> order;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) order.push_back(d);
  return randn(reversed, gen, dtype).to(device).permute(order);
}

// got (on the GPU) against want (on the CPU), as cuda_compare.h compares them.
void check_close(const Tensor& got, const Tensor& want, double tol, const char* what) {
  INFO(what);
  check_matches_cpu(got, want, tol);
}

// Table rows that no example reads have exactly zero gradient.
void check_unread_rows_zero(const Tensor& grad, const Tensor& rows, const char* what) {
  INFO(what);
  const auto read = rows.to_vector<int64_t>();
  const auto g = grad.to_vector<double>();
  const int64_t width = grad.numel() / std::max<int64_t>(grad.size(0), 1);
  for (int64_t r = 0; r < grad.size(0); ++r) {
    if (std::find(read.begin(), read.end(), r) != read.end()) continue;
    for (int64_t c = 0; c < width; ++c) REQUIRE(g[r * width + c] == 0);
  }
}

struct Forward {
  Tensor z, stats, pattern;  // pattern: undefined unless asked for
};

// The forward, with in.residual added when `residual` (which needs sum_heads), asking for the
// pattern when `keep_pattern`.
Forward run_forward(const Inputs& in, double scale, bool sum_heads, Device device,
                    bool residual = false, bool keep_pattern = true) {
  Forward out;
  backend_for(device).attention(in.q, in.k, in.v, in.q_rows, in.kv_rows, scale, sum_heads,
                                residual ? in.residual : Tensor(), out.z, out.stats,
                                keep_pattern ? &out.pattern : nullptr);
  return out;
}

struct Grads {
  Tensor dq, dk, dv, dresidual;  // dresidual only with a residual
};

Grads run_backward(const Tensor& dz, const Inputs& in, const Tensor& stats, double scale,
                   bool sum_heads, Device device, bool residual = false) {
  Grads g;
  backend_for(device).attention_backward(dz, in.q, in.k, in.v, in.q_rows, in.kv_rows, stats,
                                         scale, sum_heads, residual ? in.residual : Tensor(),
                                         g.dq, g.dk, g.dv, g.dresidual);
  return g;
}

// The message of the tg::Error that f throws ("" when it throws none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("cuda attention: forward and backward match the CPU backend", "[cuda][attention]") {
  TG_REQUIRE_CUDA_DEVICE();
  NoGradGuard no_grad;
  uint64_t seed = 100;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const Sizes& n : kSizes) {
      for (Rows mode : {Rows::Dense, Rows::Shuffled, Rows::Shared}) {
        for (bool sum_heads : {false, true}) {
          ++seed;
          const bool strided = seed % 2 == 0;
          INFO(dtype_name(dtype) << " B " << n.batch << " Tq " << n.queries << " T " << n.keys
                                 << " H " << n.heads << " Dh " << n.head_size << " Dv "
                                 << n.value_size << " " << rows_name(mode) << " rows"
                                 << (sum_heads ? ", sum_heads" : "")
                                 << (strided ? ", strided" : ""));
          const double scale = 1 / std::sqrt(static_cast<double>(n.head_size));
          const double tol = tolerance_for(dtype);
          const Inputs cpu = make_inputs(n, mode, dtype, seed, strided, kCpu);
          const Inputs gpu = make_inputs(n, mode, dtype, seed, strided, kGpu);
          const Forward want = run_forward(cpu, scale, sum_heads, kCpu);
          const Forward got = run_forward(gpu, scale, sum_heads, kGpu);
          REQUIRE(got.z.shape() == z_shape(n, sum_heads));
          check_close(got.z, want.z, tol, "z");
          check_close(got.stats, want.stats, tol, "softmax statistics");
          check_close(got.pattern, want.pattern, tol, "pattern");
          // [B, H, Tq, T], exact zeros where key j comes after query i's position.
          const auto p = got.pattern.to_vector<double>();
          for (size_t e = 0; e < p.size(); ++e) {
            const int64_t j = static_cast<int64_t>(e) % n.keys;
            const int64_t i = static_cast<int64_t>(e) / n.keys % n.queries;
            if (j > n.keys - n.queries + i) REQUIRE(p[e] == 0);
          }

          const Shape zs = z_shape(n, sum_heads);
          const Grads gw = run_backward(make_dz(zs, dtype, seed, strided, kCpu), cpu,
                                        want.stats, scale, sum_heads, kCpu);
          const Grads gg = run_backward(make_dz(zs, dtype, seed, strided, kGpu), gpu,
                                        got.stats, scale, sum_heads, kGpu);
          check_close(gg.dq, gw.dq, tol, "dq");
          check_close(gg.dk, gw.dk, tol, "dk");
          check_close(gg.dv, gw.dv, tol, "dv");
          check_unread_rows_zero(gg.dq, gpu.q_rows, "dq, unread rows");
          check_unread_rows_zero(gg.dk, gpu.kv_rows, "dk, unread rows");
          check_unread_rows_zero(gg.dv, gpu.kv_rows, "dv, unread rows");
        }
      }
    }
  }
}

// Runs the multi-kernel paths for its lifetime.
struct UnfusedAttention {
  UnfusedAttention() { cuda::set_fused_attention(false); }
  ~UnfusedAttention() { cuda::set_fused_attention(true); }
  UnfusedAttention(const UnfusedAttention&) = delete;
  UnfusedAttention& operator=(const UnfusedAttention&) = delete;
};

// Hands the one-query backward's key and value gradients over as dense buffers for its lifetime.
struct DenseKeyValueRows {
  DenseKeyValueRows() { cuda::set_weighted_key_value_rows(false); }
  ~DenseKeyValueRows() { cuda::set_weighted_key_value_rows(true); }
  DenseKeyValueRows(const DenseKeyValueRows&) = delete;
  DenseKeyValueRows& operator=(const DenseKeyValueRows&) = delete;
};

TEST_CASE("cuda attention: the one-kernel paths match the CPU and the multi-kernel paths",
          "[cuda][attention]") {
  TG_REQUIRE_CUDA_DEVICE();
  NoGradGuard no_grad;
  // Which shapes take the one-kernel paths: T <= 64 and a head's rows within shared memory.
  CHECK(cuda::fused_attention_fits(64, 64, 32, 16, DType::Float32, true));
  CHECK(cuda::fused_attention_fits(3, 3, 32, 32, DType::Float64, true));
  CHECK_FALSE(cuda::fused_attention_fits(65, 7, 7, 9, DType::Float32, false));
  CHECK_FALSE(cuda::fused_attention_fits(64, 64, 128, 128, DType::Float32, false));
  CHECK(cuda::fused_attention_fits(64, 64, 32, 16, DType::Float64, false));
  CHECK_FALSE(cuda::fused_attention_fits(64, 64, 32, 16, DType::Float64, true));
  REQUIRE(cuda::fused_attention_enabled());

  // {B, Tq, T, H, Dh, Dv}: the nanda shape's T, H and Dh (B cut down), then T = 64 and 65. One
  // query of at most 32 keys takes the single-query kernels, 8 / H examples a block (at least
  // one): nanda's last-position step (19 examples: 9 blocks and half of a tenth), 3 heads (2
  // examples a block, 6 of 8 warps busy), 9 heads (a warp takes two heads), and 33 keys (the
  // team kernels). The other small shapes run a warp per example, 8 to a block; 4 queries is the
  // most one warp takes.
  const std::vector<Sizes> sizes = {{2, 1, 1, 1, 1, 3},     {5, 3, 3, 4, 32, 32},
                                    {19, 1, 3, 4, 32, 32},  {5, 1, 32, 3, 4, 6},
                                    {3, 1, 32, 9, 7, 5},    {3, 1, 33, 2, 4, 4},
                                    {9, 4, 4, 2, 7, 5},
                                    {3, 5, 5, 4, 7, 2},     {2, 3, 17, 4, 32, 5},
                                    {2, 33, 33, 1, 128, 7}, {2, 64, 64, 4, 32, 16},
                                    {1, 64, 64, 1, 128, 128}, {2, 7, 65, 4, 7, 9}};
  uint64_t seed = 900;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const Sizes& n : sizes) {
      for (Rows mode : {Rows::Dense, Rows::Shuffled, Rows::Shared}) {
        for (int variant = 0; variant < 3; ++variant) {  // plain, sum_heads, and a residual
          const bool sum_heads = variant > 0, residual = variant == 2;
          ++seed;
          const bool strided = seed % 2 == 0;
          const bool fused_forward = cuda::fused_attention_fits(
              n.keys, n.queries, n.head_size, n.value_size, dtype, false);
          const bool fused_backward = cuda::fused_attention_fits(
              n.keys, n.queries, n.head_size, n.value_size, dtype, true);
          INFO(dtype_name(dtype) << " B " << n.batch << " Tq " << n.queries << " T " << n.keys
                                 << " H " << n.heads << " Dh " << n.head_size << " Dv "
                                 << n.value_size << " " << rows_name(mode) << " rows"
                                 << (sum_heads ? ", sum_heads" : "")
                                 << (residual ? ", residual" : "")
                                 << (strided ? ", strided" : "") << "; forward "
                                 << (fused_forward ? "one kernel" : "several")
                                 << ", backward " << (fused_backward ? "one kernel" : "several"));
          const double scale = 1 / std::sqrt(static_cast<double>(n.head_size));
          const double tol = tolerance_for(dtype);
          const Inputs cpu = make_inputs(n, mode, dtype, seed, strided, kCpu);
          const Inputs gpu = make_inputs(n, mode, dtype, seed, strided, kGpu);
          const Shape zs = z_shape(n, sum_heads);
          const Tensor dz_cpu = make_dz(zs, dtype, seed, strided, kCpu);
          const Tensor dz_gpu = make_dz(zs, dtype, seed, strided, kGpu);

          const Forward want = run_forward(cpu, scale, sum_heads, kCpu, residual);
          const Grads gw =
              run_backward(dz_cpu, cpu, want.stats, scale, sum_heads, kCpu, residual);
          const Forward fused = run_forward(gpu, scale, sum_heads, kGpu, residual);
          const Grads gf =
              run_backward(dz_gpu, gpu, fused.stats, scale, sum_heads, kGpu, residual);
          // Not asking for the pattern changes no other bit (the one-kernel path then writes
          // none; the several kernels keep it as scratch).
          const Forward fused_bare = run_forward(gpu, scale, sum_heads, kGpu, residual, false);
          const auto [unfused, gu, unfused_bare] = [&] {
            UnfusedAttention off;
            Forward f = run_forward(gpu, scale, sum_heads, kGpu, residual);
            Grads g = run_backward(dz_gpu, gpu, f.stats, scale, sum_heads, kGpu, residual);
            Forward bare = run_forward(gpu, scale, sum_heads, kGpu, residual, false);
            return std::tuple{f, g, bare};
          }();
          for (const Forward* got : {&fused, &unfused}) {
            INFO((got == &fused ? "one kernel" : "several kernels"));
            check_close(got->z, want.z, tol, "z");
            check_close(got->stats, want.stats, tol, "softmax statistics");
            check_close(got->pattern, want.pattern, tol, "pattern");
            const Forward& bare = got == &fused ? fused_bare : unfused_bare;
            CHECK_FALSE(bare.pattern.defined());
            CHECK(bare.z.to_vector<double>() == got->z.to_vector<double>());
            CHECK(bare.stats.to_vector<double>() == got->stats.to_vector<double>());
          }
          for (const Grads* got : {&gf, &gu}) {
            INFO((got == &gf ? "one kernel" : "several kernels"));
            check_close(got->dq, gw.dq, tol, "dq");
            check_close(got->dk, gw.dk, tol, "dk");
            check_close(got->dv, gw.dv, tol, "dv");
            check_unread_rows_zero(got->dq, gpu.q_rows, "dq, unread rows");
            check_unread_rows_zero(got->dk, gpu.kv_rows, "dk, unread rows");
            check_unread_rows_zero(got->dv, gpu.kv_rows, "dv, unread rows");
            if (residual) {
              check_close(got->dresidual, gw.dresidual, tol, "dresidual");
              check_unread_rows_zero(got->dresidual, gpu.q_rows, "dresidual, unread rows");
            }
          }
          // The two GPU paths against each other (the same arithmetic in the same order).
          const auto gpu_close = [&](const Tensor& a, const Tensor& b, const char* what) {
            INFO(what);
            REQUIRE(a.shape() == b.shape());
            CHECK(relative_error(a.to_vector<double>(), b.to_vector<double>()) < tol);
          };
          gpu_close(fused.z, unfused.z, "z, one kernel against several");
          gpu_close(fused.stats, unfused.stats, "statistics, one kernel against several");
          gpu_close(fused.pattern, unfused.pattern, "pattern, one kernel against several");
          gpu_close(gf.dq, gu.dq, "dq, one kernel against several");
          gpu_close(gf.dk, gu.dk, "dk, one kernel against several");
          gpu_close(gf.dv, gu.dv, "dv, one kernel against several");
          // One query and shared key rows: the one-kernel path hands dk and dv to the sorted
          // scatter-add as weights of rows (cuda::WeightedRows); as dense buffers of the same
          // rounded products, which it sums in the same order, every gradient keeps its bits.
          if (n.queries == 1 && n.keys <= 32 && mode == Rows::Shared) {
            const Grads dense = [&] {
              DenseKeyValueRows off;
              return run_backward(dz_gpu, gpu, fused.stats, scale, sum_heads, kGpu, residual);
            }();
            INFO("weighted rows against dense buffers");
            CHECK(gf.dq.to_vector<double>() == dense.dq.to_vector<double>());
            CHECK(gf.dk.to_vector<double>() == dense.dk.to_vector<double>());
            CHECK(gf.dv.to_vector<double>() == dense.dv.to_vector<double>());
            if (residual)
              CHECK(gf.dresidual.to_vector<double>() == dense.dresidual.to_vector<double>());
          }
          if (residual) gpu_close(gf.dresidual, gu.dresidual, "dresidual, one against several");
        }
      }
    }
  }
}

TEST_CASE("cuda attention: table_attention and causal_attention gradients match the CPU",
          "[cuda][attention]") {
  TG_REQUIRE_CUDA_DEVICE();
  uint64_t seed = 500;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    const double tol = tolerance_for(dtype);
    for (Rows mode : {Rows::Dense, Rows::Shared}) {
      for (bool sum_heads : {false, true}) {
        ++seed;
        const Sizes n{3, 4, 9, 4, 6, 5};
        INFO(dtype_name(dtype) << " " << rows_name(mode) << (sum_heads ? ", sum_heads" : ""));
        std::vector<Tensor> z(2), dq(2), dk(2), dv(2);
        for (int d = 0; d < 2; ++d) {
          const Device device = d == 0 ? kCpu : kGpu;
          const Inputs in = make_inputs(n, mode, dtype, seed, false, device);
          Tensor q = in.q.clone().requires_grad_(), k = in.k.clone().requires_grad_(),
                 v = in.v.clone().requires_grad_();
          z[d] = table_attention(q, k, v, in.q_rows, in.kv_rows, 0.4, sum_heads);
          const Tensor weights = make_dz(z[d].shape(), dtype, seed, false, device);
          sum(z[d] * weights).backward();
          dq[d] = q.grad();
          dk[d] = k.grad();
          dv[d] = v.grad();
        }
        check_close(z[1], z[0], tol, "z");
        check_close(dq[1], dq[0], tol, "dq");
        check_close(dk[1], dk[0], tol, "dk");
        check_close(dv[1], dv[0], tol, "dv");
      }
    }
    // causal_attention on dense [B, T, H, Dh] views: q, k, v given as [B, H, T, Dh], permuted.
    Generator gen(seed);
    const Tensor q0 = randn({3, 4, 6, 5}, gen, dtype), k0 = randn({3, 4, 11, 5}, gen, dtype),
                 v0 = randn({3, 4, 11, 5}, gen, dtype), w0 = randn({3, 6, 4, 5}, gen, dtype);
    std::vector<Tensor> z(2), dq(2), dk(2), dv(2);
    for (int d = 0; d < 2; ++d) {
      const Device device = d == 0 ? kCpu : kGpu;
      Tensor q = q0.to(device).clone().requires_grad_(),
             k = k0.to(device).clone().requires_grad_(),
             v = v0.to(device).clone().requires_grad_();
      z[d] = causal_attention(q.permute({0, 2, 1, 3}), k.permute({0, 2, 1, 3}),
                              v.permute({0, 2, 1, 3}), 0.3);
      sum(z[d] * w0.to(device)).backward();
      dq[d] = q.grad();
      dk[d] = k.grad();
      dv[d] = v.grad();
    }
    INFO("causal_attention " << dtype_name(dtype));
    check_close(z[1], z[0], tol, "z");
    check_close(dq[1], dq[0], tol, "dq");
    check_close(dk[1], dk[0], tol, "dk");
    check_close(dv[1], dv[0], tol, "dv");
  }
}

TEST_CASE("cuda attention: the same inputs give the same bits every run", "[cuda][attention]") {
  TG_REQUIRE_CUDA_DEVICE();
  NoGradGuard no_grad;
  const Sizes n{3, 5, 17, 4, 8, 6};
  for (Rows mode : {Rows::Dense, Rows::Shared}) {
    INFO(rows_name(mode));
    const Inputs in = make_inputs(n, mode, DType::Float32, 7, false, kGpu);
    const Tensor dz = make_dz(z_shape(n, true), DType::Float32, 7, false, kGpu);
    std::vector<std::vector<float>> first;
    for (int run = 0; run < 2; ++run) {
      const Forward f = run_forward(in, 0.5, true, kGpu, true);
      const Grads g = run_backward(dz, in, f.stats, 0.5, true, kGpu, true);
      std::vector<std::vector<float>> all;
      for (const Tensor* t : {&f.z, &f.stats, &f.pattern, &g.dq, &g.dk, &g.dv, &g.dresidual})
        all.push_back(t->to_vector<float>());
      if (run == 0) first = all;
      else CHECK(all == first);
    }
  }
}

TEST_CASE("cuda attention: a residual gives the bits of a gather and an add afterwards",
          "[cuda][attention]") {
  TG_REQUIRE_CUDA_DEVICE();
  NoGradGuard no_grad;
  Backend& gpu = backend_for(kGpu);
  // The nanda shape (cut down), T = 65 (beyond the one-kernel paths) and no heads at all.
  const std::vector<Sizes> sizes = {{5, 3, 3, 4, 32, 32}, {2, 7, 65, 4, 7, 9}, {3, 2, 5, 0, 8, 5}};
  uint64_t seed = 1300;
  for (const Sizes& n : sizes) {
    for (Rows mode : {Rows::Dense, Rows::Shared}) {
      for (bool one_kernel : {true, false}) {
        ++seed;
        const bool strided = seed % 2 == 0;
        INFO("T " << n.keys << " H " << n.heads << " " << rows_name(mode) << " rows, "
                  << (one_kernel ? "one kernel" : "several") << (strided ? ", strided" : ""));
        const Inputs in = make_inputs(n, mode, DType::Float32, seed, strided, kGpu);
        const Tensor dz = make_dz(z_shape(n, true), DType::Float32, seed, strided, kGpu);
        std::optional<UnfusedAttention> several;
        if (!one_kernel) several.emplace();
        const Forward with = run_forward(in, 0.3, true, kGpu, true);
        const Forward without = run_forward(in, 0.3, true, kGpu);
        const Grads g = run_backward(dz, in, with.stats, 0.3, true, kGpu, true);
        const Grads g0 = run_backward(dz, in, without.stats, 0.3, true, kGpu);
        several.reset();
        // x + attention(x): the residual's rows gathered, then added to the heads' sum.
        const Tensor added = gpu.binary(BinaryOp::Add, gpu.index_select(in.residual, in.q_rows),
                                        without.z);
        CHECK(with.z.to_vector<float>() == added.to_vector<float>());
        CHECK(with.stats.to_vector<float>() == without.stats.to_vector<float>());
        CHECK(with.pattern.to_vector<float>() == without.pattern.to_vector<float>());
        // The gather's gradient: dz scattered back through q_rows; the tables' are unchanged.
        REQUIRE(g.dresidual.shape() == in.residual.shape());
        CHECK(g.dresidual.to_vector<float>() ==
              gpu.index_add(dz, in.q_rows, in.q_table_rows).to_vector<float>());
        CHECK(g.dq.to_vector<float>() == g0.dq.to_vector<float>());
        CHECK(g.dk.to_vector<float>() == g0.dk.to_vector<float>());
        CHECK(g.dv.to_vector<float>() == g0.dv.to_vector<float>());
      }
    }
  }
}

// table_attention_layer (the first layer on the embedding table as one op): its grouped
// products and its one sum for the table's gradient against the composition it replaces
// (head_matmul, table_attention) on the same GPU, where the products are the same launches'
// entries (z and the weight gradients bit for bit) and the table's gradient is summed in
// another order (tolerance), and against the CPU; at the nanda shape, an odd one and an empty
// batch, with no residual, the table itself as the residual, and a separate one.
TEST_CASE("cuda attention: the attention layer on a table equals its composition and the CPU",
          "[cuda][attention]") {
  TG_REQUIRE_CUDA_DEVICE();
  struct Shape {
    int64_t batch, queries, keys, rows, d_model, heads, d_head;
  };
  uint64_t seed = 1400;
  for (const Shape& n : {Shape{61, 1, 3, 342, 128, 4, 32}, Shape{23, 2, 3, 9, 10, 3, 6},
                         Shape{0, 1, 3, 9, 10, 3, 6}}) {  // no examples: zero gradients
    for (int kind = 0; kind < 3; ++kind) {  // no residual, the table, a separate one
      ++seed;
      INFO(n.rows << " rows, d_model " << n.d_model << ", " << n.heads << " heads of "
                  << n.d_head << ", residual " << kind);
      std::mt19937_64 rng(seed);
      std::vector<int64_t> q_index(n.batch * n.queries), kv_index(n.batch * n.keys);
      for (int64_t& r : q_index) r = static_cast<int64_t>(rng() % n.rows);
      for (int64_t& r : kv_index) r = static_cast<int64_t>(rng() % n.rows);
      Generator gen(seed);
      // Weights scaled as the model initialises them (std 1 / sqrt(fan-in)): unscaled, the
      // scores saturate the softmax, and dq and dk are mostly cancellation.
      const double in_scale = 1 / std::sqrt(static_cast<double>(n.d_model));
      const double out_scale = 1 / std::sqrt(static_cast<double>(n.d_head));
      const std::vector<Tensor> values = {randn({n.rows, n.d_model}, gen),
                                          randn({n.heads, n.d_model, n.d_head}, gen) * in_scale,
                                          randn({n.heads, n.d_model, n.d_head}, gen) * in_scale,
                                          randn({n.heads, n.d_model, n.d_head}, gen) * in_scale,
                                          randn({n.heads, n.d_head, n.d_model}, gen) * out_scale,
                                          randn({n.rows, n.d_model}, gen)};
      const Tensor dz = randn({n.batch, n.queries, n.d_model}, gen);
      auto run = [&](Device device, bool fused) {
        std::vector<Tensor> leaves;
        for (const Tensor& v : values) leaves.push_back(v.to(device).requires_grad_());
        const Tensor q_rows = from_vector(q_index, {n.batch, n.queries}, device);
        const Tensor kv_rows = from_vector(kv_index, {n.batch, n.keys}, device);
        const Tensor residual = kind == 0 ? Tensor() : kind == 1 ? leaves[0] : leaves[5];
        Tensor z;
        if (fused) {
          z = table_attention_layer(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], q_rows,
                                    kv_rows, 0.3, residual);
        } else {
          const Tensor x =
              leaves[0].unsqueeze(1).expand({n.rows, n.heads, n.d_model});  // one view for all
          z = table_attention(head_matmul(x, leaves[1]), head_matmul(x, leaves[2]),
                              head_matmul(head_matmul(x, leaves[3]), leaves[4]), q_rows, kv_rows,
                              0.3, true, residual);
        }
        z.backward(dz.to(device));
        std::vector<std::vector<double>> out = {z.to_vector<double>()};  // exact: floats
        for (const Tensor& t : leaves)
          out.push_back(t.grad().defined() ? t.grad().to_vector<double>() : std::vector<double>());
        return out;
      };
      const auto fused = run(kGpu, true), composed = run(kGpu, false);
      const auto cpu = run(kCpu, true);
      const char* names[] = {"z", "dtable", "dW_Q", "dW_K", "dW_V", "dW_O", "dresidual"};
      for (size_t i = 0; i < fused.size(); ++i) {
        INFO(names[i]);
        REQUIRE(fused[i].size() == cpu[i].size());
        if (i == 1)  // the table's gradient: one sum of all the products in place of three adds
          CHECK(relative_error(fused[i], composed[i]) < 1e-5);
        else
          CHECK(fused[i] == composed[i]);
        CHECK(relative_error(fused[i], cpu[i]) < 1e-5);
      }
    }
  }
}

// A NaN in a query row makes its scores NaN: both backends then give that row the maximum -inf
// (a NaN counts as -inf in it) and NaN probabilities and outputs, and the other rows as usual.
TEST_CASE("cuda attention: a NaN score row gives the CPU's outputs and statistics",
          "[cuda][attention]") {
  TG_REQUIRE_CUDA_DEVICE();
  NoGradGuard no_grad;
  // The one-query kernels, then the team kernel (three queries).
  for (const Sizes& n : {Sizes{3, 1, 3, 2, 4, 4}, Sizes{3, 3, 4, 2, 3, 3}}) {
    INFO("Tq " << n.queries << " T " << n.keys);
    std::vector<Forward> forwards;
    for (Device device : {kCpu, kGpu}) {
      Inputs in = make_inputs(n, Rows::Dense, DType::Float32, 7, false, device);
      std::vector<float> q = in.q.to_vector<float>();
      q[1] = std::numeric_limits<float>::quiet_NaN();  // query row 0, head 0
      in.q = from_vector(q, in.q.shape()).to(device);
      forwards.push_back(run_forward(in, 0.5, false, device));
    }
    const std::vector<float> stats = forwards[0].stats.to_vector<float>();
    CHECK(stats[0] == -std::numeric_limits<float>::infinity());  // [b 0, h 0, i 0]: the maximum
    CHECK(std::isnan(stats[1]));
    CHECK(std::isfinite(stats[2]));  // [b 0, h 0, i 1] or [b 0, h 1, i 0]
    check_close(forwards[1].stats, forwards[0].stats, 1e-5, "stats");
    check_close(forwards[1].z, forwards[0].z, 1e-5, "z");
    check_close(forwards[1].pattern, forwards[0].pattern, 1e-5, "pattern");
  }
}

TEST_CASE("cuda attention: empty batches and no queries", "[cuda][attention]") {
  TG_REQUIRE_CUDA_DEVICE();
  NoGradGuard no_grad;
  struct Empty {
    int64_t batch, queries, keys;
  };
  for (const Empty e : {Empty{0, 3, 5}, Empty{2, 0, 5}, Empty{2, 0, 0}}) {
    for (bool sum_heads : {false, true}) {
      INFO("B " << e.batch << " Tq " << e.queries << " T " << e.keys
                << (sum_heads ? ", sum_heads" : ""));
      const int64_t heads = 2, dh = 3, dvs = 4;
      std::vector<Tensor> results;
      for (Device device : {kCpu, kGpu}) {
        Inputs in;
        in.q = ones({4, heads, dh}, DType::Float32, device);
        in.k = ones({6, heads, dh}, DType::Float32, device);
        in.v = ones({6, heads, dvs}, DType::Float32, device);
        in.q_rows = zeros({e.batch, e.queries}, DType::Int64, device);
        in.kv_rows = zeros({e.batch, e.keys}, DType::Int64, device);
        const Forward f = run_forward(in, 1.0, sum_heads, device);
        const Tensor dz = zeros(f.z.shape(), DType::Float32, device);
        const Grads g = run_backward(dz, in, f.stats, 1.0, sum_heads, device);
        results.insert(results.end(), {f.z, f.stats, f.pattern, g.dq, g.dk, g.dv});
      }
      for (size_t r = 0; r < 6; ++r) {
        INFO("output " << r);
        CHECK(results[6 + r].device() == kGpu);
        CHECK(results[6 + r].shape() == results[r].shape());
      }
      for (size_t r = 9; r < 12; ++r)  // the table gradients: all zero
        for (const double g : results[r].to_vector<double>()) CHECK(g == 0);
    }
  }
}

TEST_CASE("cuda attention: bad row indices and dtypes give the CPU's errors",
          "[cuda][attention]") {
  TG_REQUIRE_CUDA_DEVICE();
  NoGradGuard no_grad;
  const Sizes n{2, 3, 4, 2, 3, 3};
  struct Bad {
    bool query;           // which index table gets the bad value
    int64_t position, value;
  };
  const Bad bads[] = {{true, 4, 6}, {true, 0, -1}, {false, 7, 8}, {false, 2, -5}};
  for (const Bad& bad : bads) {
    INFO((bad.query ? "query" : "key") << " row " << bad.value << " at " << bad.position);
    std::vector<std::string> forward_errors, backward_errors;
    for (Device device : {kCpu, kGpu}) {
      Inputs in = make_inputs(n, Rows::Dense, DType::Float32, 3, false, device);
      Tensor& rows = bad.query ? in.q_rows : in.kv_rows;
      auto values = rows.to_vector<int64_t>();
      values[bad.position] = bad.value;
      rows = from_vector(values, rows.shape()).to(device);
      // Valid statistics for the backward, from rows that are all in range.
      const Inputs good = make_inputs(n, Rows::Dense, DType::Float32, 3, false, device);
      const Forward f = run_forward(good, 0.5, false, device);
      forward_errors.push_back(error_of([&] { run_forward(in, 0.5, false, device); }));
      backward_errors.push_back(error_of([&] {
        run_backward(ones(f.z.shape(), DType::Float32, device), in, f.stats, 0.5, false,
                     device);
      }));
    }
    CHECK_THAT(forward_errors[0], Contains("is outside the table's"));
    CHECK(forward_errors[1] == forward_errors[0]);
    CHECK(backward_errors[1] == backward_errors[0]);
  }
  // The text itself, for one case.
  Inputs in = make_inputs(n, Rows::Dense, DType::Float32, 3, false, kGpu);
  in.q_rows = from_vector<int64_t>({0, 1, 2, 3, 9, 5}, {2, 3}).to(kGpu);
  REQUIRE_TG_ERROR(run_forward(in, 0.5, false, kGpu),
                   Equals("attention: query row 9 at position 4 is outside the table's 6 rows"));
  // The device still works after the error.
  const Inputs good = make_inputs(n, Rows::Dense, DType::Float32, 3, false, kGpu);
  CHECK(run_forward(good, 0.5, false, kGpu).z.shape() == Shape{2, 3, 2, 3});

  // Statistics that are not the forward's (here the pattern, [B, H, Tq, T]).
  std::vector<std::string> stats_errors;
  for (Device device : {kCpu, kGpu}) {
    const Inputs in = make_inputs(n, Rows::Dense, DType::Float32, 3, false, device);
    const Forward f = run_forward(in, 0.5, false, device);
    stats_errors.push_back(error_of([&] {
      run_backward(ones(f.z.shape(), DType::Float32, device), in, f.pattern, 0.5, false, device);
    }));
  }
  CHECK(stats_errors[0] == "attention_backward: softmax_stats must be float32 [2, 2, 3, 2] (the "
                           "forward's), got float32 [2, 2, 3, 4]");
  CHECK(stats_errors[1] == stats_errors[0]);

  // A residual without sum_heads (each kernel path would add it to another head), and one of
  // the wrong shape (rows past its end would be read): forward and backward alike.
  for (const bool sum_heads : {false, true}) {
    INFO((sum_heads ? "a residual [6, 2]" : "a residual without sum_heads"));
    std::vector<std::string> errors;
    for (Device device : {kCpu, kGpu}) {
      Inputs in = make_inputs(n, Rows::Dense, DType::Float32, 3, false, device);
      const Forward f = run_forward(in, 0.5, sum_heads, device);
      if (sum_heads) in.residual = ones({6, 2}, DType::Float32, device);  // values are 3 wide
      errors.push_back(error_of([&] { run_forward(in, 0.5, sum_heads, device, true); }));
      errors.push_back(error_of([&] {
        run_backward(ones(f.z.shape(), DType::Float32, device), in, f.stats, 0.5, sum_heads,
                     device, true);
      }));
    }
    const std::string want =
        sum_heads ? ": residual must be float32 [6, 3] (a row per q_table row), got float32 [6, 2]"
                  : ": a residual is added to the heads' sum: it needs sum_heads";
    CHECK(errors[0] == "attention" + want);
    CHECK(errors[1] == "attention_backward" + want);
    CHECK(errors[2] == errors[0]);
    CHECK(errors[3] == errors[1]);
  }

  // int64 tables are not attention's.
  std::vector<std::string> forward_errors, backward_errors;
  for (Device device : {kCpu, kGpu}) {
    Inputs ints = make_inputs(n, Rows::Dense, DType::Float32, 3, false, device);
    const Forward f = run_forward(ints, 0.5, false, device);
    ints.q = ints.q.to(DType::Int64);
    ints.k = ints.k.to(DType::Int64);
    ints.v = ints.v.to(DType::Int64);
    forward_errors.push_back(error_of([&] { run_forward(ints, 0.5, false, device); }));
    backward_errors.push_back(error_of([&] {
      run_backward(f.z.to(DType::Int64), ints, f.stats.to(DType::Int64), 0.5, false, device);
    }));
  }
  CHECK(forward_errors[0] == "attention: not defined for int64");
  CHECK(forward_errors[1] == forward_errors[0]);
  CHECK(backward_errors[0] == "attention_backward: not defined for int64");
  CHECK(backward_errors[1] == backward_errors[0]);
}
