// GPU bandwidth of the memory-bound CUDA ops, called as a user calls them (tinygrok ops on
// cuda:0, with their checks, allocations and launches), each against a device-to-device
// cudaMemcpyAsync that moves the same number of bytes on the same stream.
//
// Entries are memory/<op>/<size>. "large": 64M float32 elements per tensor (256 MB, four to
// five times the H200's L2, so the traffic is HBM's); "model": the nanda step's shapes (B = 3830
// examples: the MLP's [3830, 512] activations, the [3830, 113] logits, the model's 226k
// parameters), which fit in L2 as they do when a training step reruns them.
//   MB     = the least traffic the op needs: every input read once, every output written once
//   GB/s   = MB / median time
//   %copy  = 100 * GB/s / the GB/s of cudaMemcpyAsync copying MB / 2 (read + write = MB)
// memory/memcpy_d2d/<size> gives the copy's own bandwidth at each size. AdamW's update on the GPU
// is one launch over every parameter (adam_step), so its %copy says how near it runs to a copy.
//
// Timing: CUDA events on the backend's stream around a batch of calls (5 at the large size; 20
// at the model's, whose kernels last microseconds, so that the batch measures the rate
// of back-to-back calls as a training step issues them, host overhead included), after 3 warm-up
// batches, for at least 0.1 s; counters use the median batch.
//   ./build/bench/bench_cuda_memory --benchmark_counters_tabular=true
// Without a CUDA device every benchmark reports "skipped: no CUDA device".
#include <benchmark/benchmark.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "kernels/backend.h"
#include "kernels/cuda/index_add_sorted.h"
#include "kernels/cuda/stream.h"
#include "optim/adam.h"
#include "tinygrok.h"
#include "adamw_params.h"
#include "cuda_bench_util.h"

using namespace tg;
using namespace tg::bench;

namespace {

// [rows, cols] of the elementwise, copy and reduction entries.
Shape matrix(Size s) { return s == Size::Large ? Shape{8192, 8192} : Shape{3830, 512}; }
// [N, C] of the softmax and cross-entropy entries (the large rows as wide as the logits').
Shape logits_shape(Size s) { return s == Size::Large ? Shape{524288, 128} : Shape{3830, 113}; }

Workload copy_workload(Size s) {
  const Tensor x = random_on_gpu(matrix(s));
  return {8.0 * x.numel(), [x] { (void)x.clone(); }};
}

Workload transpose_workload(Size s) {
  const Tensor x = random_on_gpu(matrix(s));
  return {8.0 * x.numel(), [x] { (void)x.t().contiguous(); }};
}

Workload exp_workload(Size s) {
  const Tensor x = random_on_gpu(matrix(s));
  return {8.0 * x.numel(), [x] { (void)exp(x); }};
}

Workload add_workload(Size s) {
  const Tensor x = random_on_gpu(matrix(s)), y = random_on_gpu(matrix(s));
  return {12.0 * x.numel(), [x, y] { (void)(x + y); }};
}

Workload sum_workload(Size s) {
  const Tensor x = random_on_gpu(matrix(s));
  return {4.0 * x.numel() + 4.0 * x.size(0), [x] { (void)sum(x, {-1}); }};
}

Workload softmax_workload(Size s) {
  const Tensor x = random_on_gpu(logits_shape(s));
  return {8.0 * x.numel(), [x] { (void)softmax(x, -1); }};
}

Workload cross_entropy_workload(Size s) {
  const Tensor logits = random_on_gpu(logits_shape(s));
  const int64_t n = logits.size(0), classes = logits.size(1);
  std::mt19937_64 rng(7);
  std::vector<int64_t> targets(static_cast<size_t>(n));
  for (int64_t& t : targets) t = static_cast<int64_t>(rng() % static_cast<uint64_t>(classes));
  const Tensor y = from_vector(targets).to(kGpu);
  // Reads logits and targets; writes the per-row loss and log-sum-exp (the mean is negligible).
  return {4.0 * logits.numel() + 8.0 * n + 8.0 * n,
          [logits, y] { (void)cross_entropy(logits, y); }};
}

// The scatter-add of the attention's backward into its value table (Backend::index_add): model,
// the nanda step's [11490, 512] rows (3830 examples x 3 positions, 4 heads x 128) into the 342
// (position, token) rows, with the step's own pattern of indices: tokens a and b at the first two
// positions, "=" (token 113) always at the last, so that one row takes 3830 of them; large,
// 131072 uniform indices into 1024 rows of 512. Deterministic either way (no float atomics):
// `index_add` by the sorted path (kernels/cuda/index_add_sorted.h; the default where it fits),
// `index_add_tiled` by the tiled kernel of index.cu (the CPU's order), each chosen for its calls
// whatever TG_CUDA_INDEX_ADD says. Reads src and the indices, writes the table.
Workload index_add_workload(Size s, bool tiled) {
  const int64_t n = s == Size::Large ? 131072 : 11490, rows = s == Size::Large ? 1024 : 342;
  const Tensor src = random_on_gpu({n, 512});
  std::mt19937_64 rng(11);
  std::vector<int64_t> index(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t position = i % 3, vocab = 114;
    index[static_cast<size_t>(i)] =
        s == Size::Large ? static_cast<int64_t>(rng() % static_cast<uint64_t>(rows))
        : position == 2  ? 2 * vocab + 113
                         : position * vocab + static_cast<int64_t>(rng() % 113);
  }
  const Tensor idx = from_vector(index).to(kGpu);
  Backend& gpu = backend_for(kGpu);
  return {4.0 * src.numel() + 8.0 * n + 4.0 * rows * 512, [src, idx, rows, tiled, &gpu] {
            const bool sorted = cuda::sorted_index_add_enabled();
            cuda::set_sorted_index_add(!tiled);
            (void)gpu.index_add(src, idx, rows);
            cuda::set_sorted_index_add(sorted);
          }};
}

// One AdamW step (the trainer's optimiser, weight decay 1) over one 64M-element parameter, or
// over the nanda model's parameters. Reads p, g, m, v and writes p, m, v: 28 bytes an element.
Workload adamw_workload(Size s) {
  const std::vector<Tensor> params = adamw_params(s);
  auto optimizer = std::make_shared<optim::AdamW>(params, 1e-3, 0.9, 0.98, 1e-8, 1.0);
  return {adamw_bytes(params), [optimizer] { optimizer->step(); }};
}

// cudaMemcpyAsync device to device of `copy_bytes` bytes (random data): the median batch's
// milliseconds per call over 100 batches, measured once per (bytes, batch).
double memcpy_median_ms(size_t copy_bytes, int calls) {
  static std::map<std::pair<size_t, int>, double> cache;
  const auto key = std::make_pair(copy_bytes, calls);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const int64_t floats = static_cast<int64_t>((copy_bytes + 3) / 4);
  const Tensor src = random_on_gpu({floats});
  const Tensor dst = zeros({floats}, DType::Float32, kGpu);
  const cudaStream_t stream = cuda::current_stream(0);
  const std::function<void()> run = [&] {
    cudaMemcpyAsync(dst.raw_data(), src.raw_data(), copy_bytes, cudaMemcpyDeviceToDevice, stream);
  };
  Events ev;
  for (int i = 0; i < 3; ++i) time_batch(stream, ev.start, ev.stop, calls, run);
  std::vector<double> ms;
  for (int i = 0; i < 100; ++i)
    ms.push_back(time_batch(stream, ev.start, ev.stop, calls, run) / calls);
  return cache[key] = median(ms);
}

void set_counters(benchmark::State& state, double bytes, double median_ms, int calls) {
  const double gbps = bytes / (median_ms / 1e3) / 1e9;
  const double copy_ms = memcpy_median_ms(static_cast<size_t>(bytes / 2), calls);
  const double copy_gbps = bytes / (copy_ms / 1e3) / 1e9;
  state.counters["MB"] = bytes / 1e6;
  state.counters["median_us"] = median_ms * 1e3;
  state.counters["GB/s"] = gbps;
  state.counters["%copy"] = 100.0 * gbps / copy_gbps;
}

// An exception escaping a benchmark aborts the program and loses its JSON: each is an error
// entry instead (the copy reference allocates, so it can throw too).
void BM_op(benchmark::State& state, Workload (*make)(Size), Size size) {
  double bytes = 0;
  const double per_call_ms = time_workload(state, make, size, bytes);
  if (per_call_ms < 0) return;
  try {
    set_counters(state, bytes, per_call_ms, calls_per_batch(size));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void BM_memcpy(benchmark::State& state, Size size) {
  if (!device_present()) return state.SkipWithError("skipped: no CUDA device");
  try {
    // One large tensor's copy: 256 MB read and written (model: the [3830, 512] activations).
    const double bytes = 8.0 * static_cast<double>(numel(matrix(size)));
    const int calls = calls_per_batch(size);
    const double ms = memcpy_median_ms(static_cast<size_t>(bytes / 2), calls);
    for (auto _ : state) state.SetIterationTime(ms / 1e3);
    set_counters(state, bytes, ms, calls);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!device_present()) std::printf("bench_cuda_memory: no CUDA device; every benchmark skips\n");
  warm_up_gpu();
  const std::pair<const char*, Workload (*)(Size)> ops[] = {
      {"copy", copy_workload},
      {"transpose_copy", transpose_workload},
      {"exp", exp_workload},
      {"add", add_workload},
      {"sum_last_axis", sum_workload},
      {"softmax", softmax_workload},
      {"cross_entropy", cross_entropy_workload},
      {"index_add", [](Size s) { return index_add_workload(s, false); }},
      {"index_add_tiled", [](Size s) { return index_add_workload(s, true); }},
      {"adamw_step", adamw_workload},
  };
  for (Size size : {Size::Large, Size::Model}) {
    benchmark::RegisterBenchmark((std::string("memory/memcpy_d2d/") + size_name(size)).c_str(),
                                 BM_memcpy, size)
        ->UseManualTime()
        ->Iterations(1)
        ->Unit(benchmark::kMicrosecond);
    for (const auto& [name, make] : ops)
      benchmark::RegisterBenchmark(
          (std::string("memory/") + name + "/" + size_name(size)).c_str(), BM_op, make, size)
          ->UseManualTime()
          ->MinTime(0.1)
          ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
