// Fused CUDA kernels against the unfused compositions of tensor ops they replace, on the GPU.
//
// fused/adamw/<variant>/<size>: one AdamW step (the trainer's optimiser: betas 0.9, 0.98, weight
// decay 1) over the nanda model's parameter list ("model", 226k float32 elements in a few dozen
// tensors) or one 64M-element parameter ("large", HBM-bound):
//   step             optim::AdamW::step: the backend's adam_step, one launch for all parameters
//   step_norms       step_with_norms: the same launch also sums |g|^2 and |p|^2 (one copy back)
//   ops              the composition it replaced: ~17 elementwise kernels per parameter
//   ops_norms        ops, then global_grad_norm and global_norm as separate passes
// Counters: MB = 28 bytes per element (p, g, m, v read; p, m, v written), GB/s = MB / median
// time, median_us per call.
//
// Timing: CUDA events on the backend's stream around a batch of calls (5 at the large size, 20
// at the model's, so that the batch measures back-to-back calls, host overhead included), after
// 3 warm-up batches, for at least 0.1 s; counters use the median batch (spread_%: the 10th-90th
// percentile range of the batches, what scripts/device_tables.py counts as a tie).
//   ./build/bench/bench_cuda_fused --benchmark_counters_tabular=true
// Without a CUDA device every benchmark reports "skipped: no CUDA device".
#include <benchmark/benchmark.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "kernels/backend.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/stream.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "tinygrok.h"
#include "adamw_params.h"
#include "cuda_bench_util.h"

using namespace tg;
using namespace tg::bench;

namespace {

// --- AdamW ----------------------------------------------------------------------------------

constexpr double kLr = 1e-3, kBeta1 = 0.9, kBeta2 = 0.98, kEps = 1e-8, kWeightDecay = 1.0;

// The unfused AdamW step (what optim/adam.cpp ran off the CPU before adam_step): per parameter a
// chain of elementwise ops in adam_lanes' order, the step's scalars as 0-d tensors.
struct AdamWByOps {
  std::vector<Tensor> params, exp_avg, exp_avg_sq;
  int64_t steps = 0;

  explicit AdamWByOps(std::vector<Tensor> ps) : params(std::move(ps)) {
    for (const Tensor& p : params) {
      exp_avg.push_back(zeros(p.shape(), p.dtype(), p.device()));
      exp_avg_sq.push_back(zeros(p.shape(), p.dtype(), p.device()));
    }
  }

  void step() {
    NoGradGuard no_grad;
    const double t = static_cast<double>(++steps);
    const double bias1 = 1 - std::pow(kBeta1, t), bias2 = 1 - std::pow(kBeta2, t);
    const auto s = [](double v) { return scalar(v, DType::Float32, kGpu); };
    const Tensor beta1 = s(kBeta1), one_minus_beta1 = s(1 - kBeta1), beta2 = s(kBeta2),
                 one_minus_beta2 = s(1 - kBeta2), step_size = s(kLr / bias1),
                 bias2_sqrt = s(std::sqrt(bias2)), eps = s(kEps), decay = s(1 - kLr * kWeightDecay);
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor p = params[i].detach();
      const Tensor g = params[i].grad().detach();
      p = p * decay;
      const Tensor m = beta1 * exp_avg[i] + one_minus_beta1 * g;
      const Tensor v = beta2 * exp_avg_sq[i] + one_minus_beta2 * (g * g);
      p = p - step_size * (m / (sqrt(v) / bias2_sqrt + eps));
      exp_avg[i].copy_(m);
      exp_avg_sq[i].copy_(v);
      Tensor(params[i]).copy_(p);
    }
  }
};

Workload adamw_step(Size s) {
  const std::vector<Tensor> params = adamw_params(s);
  auto opt = std::make_shared<optim::AdamW>(params, kLr, kBeta1, kBeta2, kEps, kWeightDecay);
  return {adamw_bytes(params), [opt] { opt->step(); }};
}

Workload adamw_step_norms(Size s) {
  const std::vector<Tensor> params = adamw_params(s);
  auto opt = std::make_shared<optim::AdamW>(params, kLr, kBeta1, kBeta2, kEps, kWeightDecay);
  return {adamw_bytes(params), [opt] {
            double grad_norm = 0, weight_norm = 0;
            opt->step_with_norms(&grad_norm, &weight_norm);
            benchmark::DoNotOptimize(grad_norm + weight_norm);
          }};
}

Workload adamw_ops(Size s) {
  const std::vector<Tensor> params = adamw_params(s);
  auto opt = std::make_shared<AdamWByOps>(params);
  return {adamw_bytes(params), [opt] { opt->step(); }};
}

Workload adamw_ops_norms(Size s) {
  const std::vector<Tensor> params = adamw_params(s);
  auto opt = std::make_shared<AdamWByOps>(params);
  return {adamw_bytes(params), [opt] {
            const double grad_norm = optim::global_grad_norm(opt->params);
            opt->step();
            const double weight_norm = optim::global_norm(opt->params);
            benchmark::DoNotOptimize(grad_norm + weight_norm);
          }};
}

// --- timing ---------------------------------------------------------------------------------

void BM_workload(benchmark::State& state, Workload (*make)(Size), Size size) {
  double bytes = 0;
  const double per_call_ms = time_workload(state, make, size, bytes);
  if (per_call_ms < 0) return;
  state.counters["MB"] = bytes / 1e6;
  state.counters["median_us"] = per_call_ms * 1e3;
  state.counters["GB/s"] = bytes / (per_call_ms / 1e3) / 1e9;
}

using Entry = std::pair<const char*, Workload (*)(Size)>;

// Registers fused/<name>/<size> for every entry at every size, as manual-time benchmarks.
bool register_workloads(std::initializer_list<Entry> entries,
                        std::initializer_list<Size> sizes = {Size::Model, Size::Large}) {
  for (Size size : sizes)
    for (const auto& [name, make] : entries)
      benchmark::RegisterBenchmark((std::string("fused/") + name + "/" + size_name(size)).c_str(),
                                   BM_workload, make, size)
          ->UseManualTime()
          ->MinTime(0.1)
          ->Unit(benchmark::kMicrosecond);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!device_present()) std::printf("bench_cuda_fused: no CUDA device; every benchmark skips\n");
  warm_up_gpu();
  register_workloads({{"adamw/step", adamw_step},
                      {"adamw/step_norms", adamw_step_norms},
                      {"adamw/ops", adamw_ops},
                      {"adamw/ops_norms", adamw_ops_norms}});
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// --- attention (kernels/cuda/attention.cu): one kernel against several ----------------------
// fused/attention/<forward|backward>/<fused|unfused>/<size>: Backend::attention and
// attention_backward, float32, set_fused_attention choosing the path for each call. Each call
// includes its row-index check, which copies a flag back to the host (a training step pays it).
//   model  the nanda model's first layer: B = 3830, T = Tq = 3, H = 4, Dh = 32, values already
//          projected to d_model (Dv = 128), heads summed, rows shared through the (position,
//          token) tables of 114 tokens, "=" always last as in the step (so the backward ends
//          with index_add, one of whose rows takes every example)
//   large  dense q, k, v (distinct rows: gradients straight into the tables), B = 3830,
//          T = Tq = 64, H = 4, Dh = Dv = 32
// MB counts each example's rows once, as the kernels read them (forward: q, k, v rows in, z and
// the softmax statistics out; backward: dz, q, k, v rows and the statistics in, dq, dk, dv rows
// out). The pattern is not asked for, as in training; the several kernels still write and read
// it as scratch, which is part of what the one kernel saves.
// fused/attention/residual/<fused|unfused>/model: the block's x + attn(x) at the read-out
// position, forward and backward, with x a row of the (position, token) table [342, 128]: the
// residual added by the attention kernel and scattered back in the backward's index_add launch,
// against attention, index_select, an add, attention_backward and an index_add of its own. MB
// counts the residual's rows only (read once, dz scattered once), as both must move them.
// fused/attention/layer/<fused|unfused>/model: nanda's first attention layer on its table
// [342, 128] at the read-out position, forward and backward through autograd:
// table_attention_layer (Q, K, V and their weight gradients as grouped GEMMs, the table's
// gradient one sum) against the composition it replaced (head_matmul per projection,
// table_attention, the table's gradient added by autograd). MB counts the table and the four
// weights read and their gradients written, once.
// fused/attention/key_value_rows/<fused|unfused>/model: the backward at nanda's read-out
// position (one query, shared rows, heads summed: the step's case), its key and value gradients
// handed to the sorted scatter-add as weights of rows (set_weighted_key_value_rows) against
// dense per-example buffers, [B, 3, 4, 32] and [B, 3, 4, 128], written and read back. MB counts
// what both must move: dz and the statistics read, the tables' gradients written.
namespace {

struct AttentionCase {
  int64_t batch, keys, heads, head_size, value_size;
  bool shared_rows, sum_heads;
};

AttentionCase attention_case(Size s) {
  return s == Size::Model ? AttentionCase{3830, 3, 4, 32, 128, true, true}
                          : AttentionCase{3830, 64, 4, 32, 32, false, false};
}

constexpr int64_t kAttentionTokens = 114;  // the tables' tokens: p = 113, and "="

// The case's kv row indices [B, T] on the GPU. Shared rows are nanda's (position, token) rows
// t * 114 + token: random tokens below 113 (a small LCG), and "=" (113) always at the last
// position, so that one row takes every example's gradient, as in the step. Else row b * T + t.
Tensor attention_rows(const AttentionCase& c) {
  std::vector<int64_t> rows(static_cast<size_t>(c.batch * c.keys));
  uint64_t state = 42;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t t = 0; t < c.keys; ++t) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      const int64_t token = t == c.keys - 1 ? kAttentionTokens - 1
                                            : static_cast<int64_t>((state >> 33) % 113);
      rows[b * c.keys + t] = c.shared_rows ? t * kAttentionTokens + token : b * c.keys + t;
    }
  return from_vector(rows, {c.batch, c.keys}).to(kGpu);
}

Workload attention_workload(Size s, bool backward, bool fused) {
  const AttentionCase c = attention_case(s);
  const int64_t table_rows = c.shared_rows ? c.keys * kAttentionTokens : c.batch * c.keys;
  const Tensor q = random_on_gpu({table_rows, c.heads, c.head_size});
  const Tensor k = random_on_gpu({table_rows, c.heads, c.head_size});
  const Tensor v = random_on_gpu({table_rows, c.heads, c.value_size});
  const Tensor index = attention_rows(c);
  const double scale = 1 / std::sqrt(static_cast<double>(c.head_size));
  Backend& gpu = backend_for(kGpu);
  Tensor z, stats;
  gpu.attention(q, k, v, index, index, scale, c.sum_heads, Tensor(), z, stats, nullptr);
  const Tensor dz = random_on_gpu(z.shape());
  const double rows_in = static_cast<double>(c.batch * c.keys * c.heads) *
                         static_cast<double>(2 * c.head_size + c.value_size);
  const double zs = static_cast<double>(z.numel()), ss = static_cast<double>(stats.numel());
  if (!backward)
    return {4.0 * (rows_in + zs + ss), [=, &gpu] {
              cuda::set_fused_attention(fused);
              Tensor out, out_stats;
              gpu.attention(q, k, v, index, index, scale, c.sum_heads, Tensor(), out, out_stats,
                            nullptr);
              cuda::set_fused_attention(true);
            }};
  return {4.0 * (zs + 2 * rows_in + ss), [=, &gpu] {
            cuda::set_fused_attention(fused);
            Tensor dq, dk, dv, dresidual;
            gpu.attention_backward(dz, q, k, v, index, index, stats, scale, c.sum_heads,
                                   Tensor(), dq, dk, dv, dresidual);
            cuda::set_fused_attention(true);
          }};
}

// The model case at the read-out position, as the step has it: one query (the last position's
// row), shared rows, heads summed, random tables.
struct ReadOut {
  AttentionCase c = attention_case(Size::Model);
  int64_t table_rows = c.keys * kAttentionTokens;
  Tensor kv_rows = attention_rows(c);
  Tensor q_rows = kv_rows.slice(1, c.keys - 1, c.keys).contiguous();
  Tensor q = random_on_gpu({table_rows, c.heads, c.head_size});
  Tensor k = random_on_gpu({table_rows, c.heads, c.head_size});
  Tensor v = random_on_gpu({table_rows, c.heads, c.value_size});
  double scale = 1 / std::sqrt(static_cast<double>(c.head_size));
};

Workload attention_residual_workload(bool fused) {
  const auto [c, table_rows, kv_rows, q_rows, q, k, v, scale] = ReadOut{};
  const Tensor residual = random_on_gpu({table_rows, c.value_size});
  const Tensor dz = random_on_gpu({c.batch, 1, c.value_size});
  Backend& gpu = backend_for(kGpu);
  return {4.0 * 2 * static_cast<double>(dz.numel()), [=, &gpu] {
            Tensor z, stats, dq, dk, dv, dresidual;
            if (fused) {
              gpu.attention(q, k, v, q_rows, kv_rows, scale, true, residual, z, stats, nullptr);
              gpu.attention_backward(dz, q, k, v, q_rows, kv_rows, stats, scale, true,
                                     residual, dq, dk, dv, dresidual);
            } else {
              gpu.attention(q, k, v, q_rows, kv_rows, scale, true, Tensor(), z, stats, nullptr);
              z = gpu.binary(BinaryOp::Add, gpu.index_select(residual, q_rows), z);
              gpu.attention_backward(dz, q, k, v, q_rows, kv_rows, stats, scale, true,
                                     Tensor(), dq, dk, dv, dresidual);
              dresidual = gpu.index_add(dz, q_rows, table_rows);
            }
          }};
}

Workload attention_layer_workload(bool fused) {
  const AttentionCase c = attention_case(Size::Model);  // shared rows, heads summed
  const int64_t table_rows = c.keys * kAttentionTokens, d_model = c.value_size;
  const Tensor kv_rows = attention_rows(c);
  const Tensor q_rows = kv_rows.slice(1, c.keys - 1, c.keys).contiguous();  // the read-out
  const Tensor table = random_on_gpu({table_rows, d_model}).requires_grad_();
  std::vector<Tensor> W;  // W_Q, W_K, W_V [H, d_model, Dh], W_O [H, Dh, d_model]
  for (int i = 0; i < 3; ++i)
    W.push_back(random_on_gpu({c.heads, d_model, c.head_size}).requires_grad_());
  W.push_back(random_on_gpu({c.heads, c.head_size, d_model}).requires_grad_());
  const Tensor dz = random_on_gpu({c.batch, 1, d_model});
  const double scale = 1 / std::sqrt(static_cast<double>(c.head_size));
  double elements = static_cast<double>(table.numel());
  for (const Tensor& w : W) elements += static_cast<double>(w.numel());
  return {4.0 * 2 * elements, [=] {
            // time_workload turns grad mode off for forward-only workloads; this one records
            // its graph and runs backward.
            const EnableGradGuard grad_on;
            Tensor z;
            if (fused) {
              z = table_attention_layer(table, W[0], W[1], W[2], W[3], q_rows, kv_rows, scale,
                                        table);
            } else {
              const Tensor x = table.unsqueeze(1).expand({table_rows, c.heads, d_model});
              z = table_attention(head_matmul(x, W[0]), head_matmul(x, W[1]),
                                  head_matmul(head_matmul(x, W[2]), W[3]), q_rows, kv_rows,
                                  scale, true, table);
            }
            z.backward(dz);
            for (Tensor t : {table, W[0], W[1], W[2], W[3]}) t.zero_grad();
          }};
}

Workload key_value_rows_workload(bool weighted) {
  const auto [c, table_rows, kv_rows, q_rows, q, k, v, scale] = ReadOut{};
  Backend& gpu = backend_for(kGpu);
  Tensor z, stats;
  gpu.attention(q, k, v, q_rows, kv_rows, scale, true, Tensor(), z, stats, nullptr);
  const Tensor dz = random_on_gpu(z.shape());
  const double bytes = 4.0 * static_cast<double>(dz.numel() + stats.numel() + q.numel() +
                                                 k.numel() + v.numel());
  return {bytes, [=, &gpu] {
            cuda::set_weighted_key_value_rows(weighted);
            Tensor dq, dk, dv, dresidual;
            gpu.attention_backward(dz, q, k, v, q_rows, kv_rows, stats, scale, true, Tensor(), dq,
                                   dk, dv, dresidual);
            cuda::set_weighted_key_value_rows(true);
          }};
}

Workload attention_forward_fused(Size s) { return attention_workload(s, false, true); }
Workload attention_forward_unfused(Size s) { return attention_workload(s, false, false); }
Workload attention_backward_fused(Size s) { return attention_workload(s, true, true); }
Workload attention_backward_unfused(Size s) { return attention_workload(s, true, false); }

// Registered before main() runs (as BENCHMARK(...) does), so they come before main's entries.
const bool kAttentionRegistered = register_workloads(
    {
      {"attention/forward/fused", attention_forward_fused},
      {"attention/forward/unfused", attention_forward_unfused},
      {"attention/backward/fused", attention_backward_fused},
      {"attention/backward/unfused", attention_backward_unfused},
    });
const bool kAttentionResidualRegistered = register_workloads(
    {
      {"attention/residual/fused", [](Size) { return attention_residual_workload(true); }},
      {"attention/residual/unfused", [](Size) { return attention_residual_workload(false); }},
      {"attention/layer/fused", [](Size) { return attention_layer_workload(true); }},
      {"attention/layer/unfused", [](Size) { return attention_layer_workload(false); }},
      {"attention/key_value_rows/fused", [](Size) { return key_value_rows_workload(true); }},
      {"attention/key_value_rows/unfused", [](Size) { return key_value_rows_workload(false); }},
    },
    {Size::Model});

}  // namespace

// --- cross-entropy and embedding (kernels/cuda/cross_entropy.cu, embedding.cu) ---------------
// fused/cross_entropy/<fused|unfused>/model: loss and dlogits for a mean over the nanda model's
// logits [3830, 113] (float32): Backend::cross_entropy_with_grad (one kernel: logits read once,
// dlogits written, the mean taken by its last block) against the Backend base's default, the
// route it replaces (cross_entropy, reduce, a filled row gradient, cross_entropy_backward: the
// logits read twice, four launches).
// fused/embedding/<forward|backward>/<fused|unfused>/model: tokens [3830, 3] of a vocabulary of
// 114, D = 128: embed_with_positions (one kernel) against index_select plus a broadcast add, and
// its backward (index_add plus one column-sum kernel) against index_add plus reduce, fill and
// copy. Every call includes its index check, which copies a flag back to the host. MB counts
// what the fused kernel must move, for both rows of a pair, so GB/s compares like with like.
namespace {

constexpr int64_t kCeRows = 3830, kCeClasses = 113, kEmbedLen = 3, kEmbedWidth = 128,
                  kEmbedVocab = 114;

Tensor random_tokens_on_gpu(const Shape& shape, int64_t limit) {
  std::vector<int64_t> v(static_cast<size_t>(numel(shape)));
  uint64_t state = 7;  // a small LCG
  for (int64_t& e : v) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    e = static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(limit));
  }
  return from_vector(v, {numel(shape)}).reshape(shape).to(kGpu);
}

Workload cross_entropy_workload(bool fused) {
  const Tensor logits = random_on_gpu({kCeRows, kCeClasses});
  const Tensor targets = random_tokens_on_gpu({kCeRows}, kCeClasses);
  const double bytes = 4.0 * (2 * kCeRows * kCeClasses + kCeRows) + 8.0 * kCeRows;
  Backend& gpu = backend_for(kGpu);
  return {bytes, [=, &gpu] {
            Tensor loss, dlogits;
            if (fused) gpu.cross_entropy_with_grad(logits, targets, ReduceOp::Mean, loss, dlogits);
            else gpu.Backend::cross_entropy_with_grad(logits, targets, ReduceOp::Mean, loss, dlogits);
          }};
}

Workload embedding_workload(bool backward, bool fused) {
  const Tensor W_E = random_on_gpu({kEmbedVocab, kEmbedWidth});
  const Tensor W_pos = random_on_gpu({kEmbedLen, kEmbedWidth});
  const Tensor tokens = random_tokens_on_gpu({kCeRows, kEmbedLen}, kEmbedVocab);
  const Tensor dy = random_on_gpu({kCeRows, kEmbedLen, kEmbedWidth});
  const double big = 4.0 * static_cast<double>(dy.numel()) + 8.0 * kCeRows * kEmbedLen;
  const double tables = 4.0 * static_cast<double>(W_E.numel() + W_pos.numel());
  Backend& gpu = backend_for(kGpu);
  if (!backward)
    return {big + tables, [=, &gpu] {
              const Tensor out = fused ? gpu.embed_with_positions(W_E, W_pos, tokens)
                                       : gpu.Backend::embed_with_positions(W_E, W_pos, tokens);
            }};
  return {big + tables, [=, &gpu] {
            Tensor dW_E, dW_pos;
            if (fused)
              gpu.embed_with_positions_backward(dy, tokens, kEmbedVocab, kEmbedLen, dW_E, dW_pos);
            else
              gpu.Backend::embed_with_positions_backward(dy, tokens, kEmbedVocab, kEmbedLen, dW_E,
                                                         dW_pos);
          }};
}

Workload cross_entropy_fused(Size) { return cross_entropy_workload(true); }
Workload cross_entropy_unfused(Size) { return cross_entropy_workload(false); }
Workload embedding_forward_fused(Size) { return embedding_workload(false, true); }
Workload embedding_forward_unfused(Size) { return embedding_workload(false, false); }
Workload embedding_backward_fused(Size) { return embedding_workload(true, true); }
Workload embedding_backward_unfused(Size) { return embedding_workload(true, false); }

const bool kCrossEntropyEmbeddingRegistered = register_workloads(
    {
      {"cross_entropy/fused", cross_entropy_fused},
      {"cross_entropy/unfused", cross_entropy_unfused},
      {"embedding/forward/fused", embedding_forward_fused},
      {"embedding/forward/unfused", embedding_forward_unfused},
      {"embedding/backward/fused", embedding_backward_fused},
      {"embedding/backward/unfused", embedding_backward_unfused},
    },
    {Size::Model});

}  // namespace

// --- linear + ReLU (kernels/cuda/matmul.cpp linear_forward): the GEMM's epilogue vs a pass ------
// fused/linear_relu/<fused|unfused>/<size>: y = relu(x @ W + b), float32, no pre-activation
// output (what a forward without grad, or Relu with grad, asks for).
//   fused    CudaBackend::linear_forward: the SGEMM adds the bias and applies ReLU as it stores
//   unfused  Backend::linear_forward, the composition it replaced: matmul, then bias_activation
//            over its output in place
//   model    the nanda MLP's first layer: x [3830, 128] @ W [128, 512]
//   large    4096 x 4096 @ 4096 x 4096
// MB is what the layer must move at least (x, W, b in, y out), the same for both, so GB/s
// compares them on one scale; at the large size the GEMM is compute-bound and the difference is
// the epilogue pass's 2 x 64 MB.
namespace {

Workload linear_relu_workload(Size s, bool fused) {
  const int64_t m = s == Size::Model ? 3830 : 4096, k = s == Size::Model ? 128 : 4096,
                n = s == Size::Model ? 512 : 4096;
  const Tensor x = random_on_gpu({m, k}), W = random_on_gpu({k, n}), b = random_on_gpu({n});
  Backend& gpu = backend_for(kGpu);
  const double bytes = 4.0 * static_cast<double>(m * k + k * n + n + m * n);
  if (fused)
    return {bytes, [=, &gpu] {
              benchmark::DoNotOptimize(
                  gpu.linear_forward(x, W, b, Activation::Relu, Tensor(), nullptr));
            }};
  return {bytes, [=, &gpu] {
            benchmark::DoNotOptimize(
                gpu.Backend::linear_forward(x, W, b, Activation::Relu, Tensor(), nullptr));
          }};
}

Workload linear_relu_fused(Size s) { return linear_relu_workload(s, true); }
Workload linear_relu_unfused(Size s) { return linear_relu_workload(s, false); }

const bool kLinearReluRegistered = register_workloads(
    {
      {"linear_relu/fused", linear_relu_fused},
      {"linear_relu/unfused", linear_relu_unfused},
    });

}  // namespace

// --- linear + ReLU backward (kernels/cuda/linear_epilogue.cu linear_backward): masked GEMMs ----
// fused/linear_relu_backward/<fused|unfused>/<size>: the gradients of y = relu(x @ W + b) from
// dy, float32, all three wanted (dx, dW, dbias), given the saved output relu(pre):
//   fused    CudaBackend::linear_backward: the two SGEMMs read dy through the mask saved > 0 as
//            they load their tiles, and dbias sums the masked dy; dpre is never written
//   unfused  Backend::linear_backward, the composition it replaced: activation_backward (dpre
//            and dbias), then dx = dpre @ W^T and dW = x^T @ dpre
//   model    the nanda MLP's first layer, as fused/linear_relu: x [3830, 128], W [128, 512]
//   large    4096 x 4096 @ 4096 x 4096
// MB is what the layer's backward must move at least (dy, saved, x, W in; dx, dW, dbias out),
// the same for both.
namespace {

Workload linear_relu_backward_workload(Size s, bool fused) {
  const int64_t m = s == Size::Model ? 3830 : 4096, k = s == Size::Model ? 128 : 4096,
                n = s == Size::Model ? 512 : 4096;
  const Tensor x = random_on_gpu({m, k}), W = random_on_gpu({k, n});
  const Tensor dy = random_on_gpu({m, n}), saved = relu(random_on_gpu({m, n}));
  Backend& gpu = backend_for(kGpu);
  const double bytes = 4.0 * static_cast<double>(2 * m * n + 2 * m * k + 2 * k * n + n);
  return {bytes, [=, &gpu] {
            Tensor dx, dW, db;
            if (fused)
              gpu.linear_backward(dy, x, W, saved, Activation::Relu, true, Tensor(), Tensor(), dx,
                                  dW, db);
            else
              gpu.Backend::linear_backward(dy, x, W, saved, Activation::Relu, true, Tensor(),
                                           Tensor(), dx, dW, db);
          }};
}

Workload linear_relu_backward_fused(Size s) { return linear_relu_backward_workload(s, true); }
Workload linear_relu_backward_unfused(Size s) { return linear_relu_backward_workload(s, false); }

const bool kLinearReluBackwardRegistered = register_workloads(
    {
      {"linear_relu_backward/fused", linear_relu_backward_fused},
      {"linear_relu_backward/unfused", linear_relu_backward_unfused},
    });

}  // namespace

// --- an MLP's backward (autograd/ops/mlp.cpp): the ReLU mask in a GEMM's epilogue -------------
// fused/mlp_backward/<fused|unfused>/<size>: the gradients of out = relu(x @ W_in + b_in) @ W_out
// + b_out from dout, float32, every one wanted (dx, dW_in, db_in, dW_out, db_out), given h (the
// hidden layer relu(...), which the forward keeps):
//   fused    what the mlp op's backward runs: the second layer's CudaBackend::linear_backward,
//            whose dx GEMM stores dpre = (dout @ W_out^T) * (h > 0) through its epilogue
//            (dx_relu_mask), then the first layer's as an Identity layer, plain GEMMs
//   unfused  Backend::linear_backward for each layer, the composition: dh = dout @ W_out^T,
//            activation_backward (dpre and db_in), then dx = dpre @ W_in^T, dW_in = x^T @ dpre
//   model    the nanda MLP: x [3830, 128], W_in [128, 512], W_out [512, 128]
//   large    x [4096, 1024], W_in [1024, 4096], W_out [4096, 1024]
// MB is what the backward must move at least (dout, h, x, W_in, W_out in; the five gradients
// out), the same for both.
namespace {

Workload mlp_backward_workload(Size s, bool fused) {
  const int64_t m = s == Size::Model ? 3830 : 4096, d = s == Size::Model ? 128 : 1024,
                f = s == Size::Model ? 512 : 4096;
  const Tensor x = random_on_gpu({m, d}), W_in = random_on_gpu({d, f});
  const Tensor W_out = random_on_gpu({f, d}), dout = random_on_gpu({m, d});
  const Tensor h = relu(random_on_gpu({m, f}));
  Backend& gpu = backend_for(kGpu);
  const double bytes = 4.0 * static_cast<double>(3 * m * d + m * f + 4 * d * f + f + d);
  return {bytes, [=, &gpu] {
            Tensor dh, dW_out, db_out, dx, dW_in, db_in;
            if (fused) {
              gpu.linear_backward(dout, h, W_out, Tensor(), Activation::Identity, true, Tensor(),
                                  h, dh, dW_out, db_out);
              gpu.linear_backward(dh, x, W_in, Tensor(), Activation::Identity, true, Tensor(),
                                  Tensor(), dx, dW_in, db_in);
            } else {
              gpu.Backend::linear_backward(dout, h, W_out, Tensor(), Activation::Identity, true,
                                           Tensor(), Tensor(), dh, dW_out, db_out);
              gpu.Backend::linear_backward(dh, x, W_in, h, Activation::Relu, true, Tensor(),
                                           Tensor(), dx, dW_in, db_in);
            }
          }};
}

Workload mlp_backward_fused(Size s) { return mlp_backward_workload(s, true); }
Workload mlp_backward_unfused(Size s) { return mlp_backward_workload(s, false); }

const bool kMlpBackwardRegistered = register_workloads(
    {
      {"mlp_backward/fused", mlp_backward_fused},
      {"mlp_backward/unfused", mlp_backward_unfused},
    });

}  // namespace
