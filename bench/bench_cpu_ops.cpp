// CPU op benchmarks: tinygrok's matmul against Eigen's own sgemm on the same shapes (the ceiling),
// and the memory-bound elementwise and softmax kernels.
//   ./build/bench/bench_cpu_ops --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include "tinygrok.h"

using namespace tg;

namespace {

void set_gflops(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iteration * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}

void BM_matmul(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  Generator gen(0);
  const Tensor a = randn({m, k}, gen), b = randn({k, n}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b).raw_data());
  set_gflops(state, 2.0 * m * k * n);
}

void BM_eigen_sgemm(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(m, k), b = Eigen::MatrixXf::Random(k, n);
  Eigen::MatrixXf c(m, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  set_gflops(state, 2.0 * m * k * n);
}

void matmul_shapes(benchmark::internal::Benchmark* b) {
  b->Args({512, 512, 512})->Args({2048, 2048, 2048})->Args({3830, 128, 512})->Args({11490, 128, 128});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
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
BENCHMARK(BM_add_broadcast)->Arg(3830)->UseRealTime();
BENCHMARK(BM_softmax)->Arg(3830)->UseRealTime();

BENCHMARK_MAIN();
