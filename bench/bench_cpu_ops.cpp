// CPU op benchmarks: tinygrok's matmul against Eigen's own sgemm on the same shapes (the ceiling)
// -- the nanda step's GEMMs among them --, each with 1 and 2 threads; the fused linear layer,
// softmax cross-entropy, table attention and AdamW of that step; and the memory-bound
// elementwise and softmax kernels.
//   ./build/bench/bench_cpu_ops --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <omp.h>

#include <array>
#include <cmath>

#include "grok/config.h"
#include "grok/dataset.h"
#include "grok/trainer.h"
#include "tinygrok.h"

using namespace tg;

namespace {

void set_gflops(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iteration * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// Sets the OpenMP (and so Eigen) thread count for one benchmark, and restores it after.
struct Threads {
  explicit Threads(int64_t n) : saved(omp_get_max_threads()) {
    omp_set_num_threads(static_cast<int>(n));
  }
  ~Threads() { omp_set_num_threads(saved); }
  int saved;
};

void BM_matmul(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const Threads threads(state.range(3));
  Generator gen(0);
  const Tensor a = randn({m, k}, gen), b = randn({k, n}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b).raw_data());
  set_gflops(state, 2.0 * m * k * n);
}

void BM_eigen_sgemm(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const Threads threads(state.range(3));
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(m, k), b = Eigen::MatrixXf::Random(k, n);
  Eigen::MatrixXf c(m, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  set_gflops(state, 2.0 * m * k * n);
}

// M, K, N: square references, then the GEMMs of one nanda step (B = 3830): forward MLP in and
// out, attention output, unembedding, and the weight gradients' x^T @ dy with K = B.
void matmul_shapes(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {1, 2})
    for (auto [m, k, n] : {std::array<int64_t, 3>{512, 512, 512}, {2048, 2048, 2048},
                           {3830, 128, 512}, {3830, 512, 128}, {3830, 128, 128}, {3830, 128, 113},
                           {128, 3830, 512}, {512, 3830, 128}})
      b->Args({m, k, n, threads});
  b->ArgNames({"M", "K", "N", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

// The MLP's first layer as the step runs it: relu(x @ W + b), forward and backward.
void BM_linear_relu(benchmark::State& state) {
  const Threads threads(state.range(0));
  Generator gen(0);
  const Tensor x = randn({3830, 128}, gen), dy = randn({3830, 512}, gen);
  const Tensor W = randn({128, 512}, gen).requires_grad_(), b = randn({512}, gen).requires_grad_();
  for (auto _ : state) {
    const Tensor y = linear(x, W, b, Activation::Relu);
    y.backward(dy);
    benchmark::DoNotOptimize(W.grad().raw_data());
  }
  set_gflops(state, 3 * 2.0 * 3830 * 128 * 512);
}

// Softmax cross-entropy over nanda's logits [3830, 113], forward and backward.
void BM_cross_entropy(benchmark::State& state) {
  const Threads threads(state.range(0));
  Generator gen(0);
  const Tensor logits = randn({3830, 113}, gen).requires_grad_();
  std::vector<int64_t> labels(3830);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i * 7 % 113);
  const Tensor targets = from_vector(labels, {3830});
  for (auto _ : state) {
    cross_entropy(logits, targets).backward();
    benchmark::DoNotOptimize(logits.grad().raw_data());
  }
  state.SetBytesProcessed(state.iterations() * logits.numel() * 3 * sizeof(float));
}

// nanda's first-layer attention as the step runs it: 3830 examples read their q, k and
// W_O-folded v rows from the (position, token) tables of 3 * 114 rows; forward and backward.
void BM_table_attention(benchmark::State& state) {
  const Threads threads(state.range(0));
  Generator gen(0);
  const int64_t batch = 3830, len = 3, vocab = 114;
  const Tensor q = randn({len * vocab, 4, 32}, gen).requires_grad_();
  const Tensor k = randn({len * vocab, 4, 32}, gen).requires_grad_();
  const Tensor v = randn({len * vocab, 4, 128}, gen).requires_grad_();
  std::vector<int64_t> rows(batch * len);
  for (size_t i = 0; i < rows.size(); ++i)
    rows[i] = static_cast<int64_t>(i % len) * vocab + static_cast<int64_t>(i * 7919 % 113);
  const Tensor kv_rows = from_vector(rows, {batch, len});
  const Tensor q_rows = kv_rows.slice(1, len - 1, len);
  const Tensor dz = randn({batch, 1, 128}, gen);
  for (auto _ : state) {
    table_attention(q, k, v, q_rows, kv_rows, 1 / std::sqrt(32.0), true).backward(dz);
    benchmark::DoNotOptimize(v.grad().raw_data());
  }
}

// One AdamW step over nanda's 226,688 parameters (its real tensor shapes).
void BM_adamw(benchmark::State& state) {
  const Threads threads(state.range(0));
  Generator gen(0);
  grok::TrainConfig config = grok::preset("nanda");
  const grok::Dataset data = grok::make_dataset(grok::parse_operation(config.op), config.p);
  auto model = grok::build_model(config, data, gen);
  for (const Tensor& p : model->parameters()) (p * randn(p.shape(), gen)).sum().backward();
  optim::AdamW adamw(model->parameters(), 1e-3, 0.9, 0.98, 1e-8, 1.0);
  for (auto _ : state) adamw.step();
  state.SetItemsProcessed(state.iterations() * model->num_parameters());
}

void thread_counts(benchmark::internal::Benchmark* b) {
  b->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
}

void BM_add_broadcast(benchmark::State& state) {
  Generator gen(0);
  const Tensor a = randn({state.range(0), 512}, gen), bias = randn({512}, gen);
  for (auto _ : state) benchmark::DoNotOptimize((a + bias).raw_data());
  state.SetBytesProcessed(state.iterations() * a.numel() * 2 * sizeof(float));
}

void BM_softmax(benchmark::State& state) {
  Generator gen(0);
  const Tensor x = randn({state.range(0), 113}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(softmax(x).raw_data());
  state.SetBytesProcessed(state.iterations() * x.numel() * 2 * sizeof(float));
}

}  // namespace

BENCHMARK(BM_matmul)->Apply(matmul_shapes);
BENCHMARK(BM_eigen_sgemm)->Apply(matmul_shapes);
BENCHMARK(BM_linear_relu)->Apply(thread_counts)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cross_entropy)->Apply(thread_counts)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_table_attention)->Apply(thread_counts)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_adamw)->Apply(thread_counts)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_add_broadcast)->Arg(3830)->UseRealTime();
BENCHMARK(BM_softmax)->Arg(3830)->UseRealTime();

BENCHMARK_MAIN();
