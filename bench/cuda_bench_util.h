// What the CUDA benchmarks share: whether a GPU is there, the two sizes they run at, a workload
// (a call and the bytes it must move), random inputs on cuda:0, and timing batches of calls
// with CUDA events on the backend's stream.
#pragma once

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "autograd/grad_mode.h"
#include "kernels/cuda/stream.h"
#include "tinygrok.h"

namespace tg::bench {

inline const Device kGpu = Device::cuda(0);

inline bool device_present() {
  static const bool present = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return count > 0;
  }();
  return present;
}

// "large": well past the H200's L2 (50 MB by the datasheet, 60 MB as PyTorch reads it there),
// 5 back-to-back calls per timed batch, so that the host's latency for the first launch on an
// idle stream is a small part of it; "model": the nanda step's shapes, 20 calls per batch
// (their kernels last microseconds), host overhead included as a training step pays it.
enum class Size { Large, Model };
inline const char* size_name(Size s) { return s == Size::Large ? "large" : "model"; }
inline int calls_per_batch(Size s) { return s == Size::Large ? 5 : 20; }

// Before the first measurement: 256 MB device copies for 0.3 s, so that the GPU's clocks have
// left their idle state (an H200 idles at a fraction of its SM clock) and the first entry, the
// copy reference of bench_cuda_memory among them, is not timed on the way up.
inline void warm_up_gpu() {
  if (!device_present()) return;
  void *src = nullptr, *dst = nullptr;
  const size_t bytes = size_t(256) << 20;
  if (cudaMalloc(&src, bytes) != cudaSuccess || cudaMalloc(&dst, bytes) != cudaSuccess) {
    cudaFree(src);
    (void)cudaGetLastError();
    return;
  }
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start);
  for (float ms = 0; ms < 300;) {
    for (int i = 0; i < 20; ++i) cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    if (cudaEventElapsedTime(&ms, start, stop) != cudaSuccess) break;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(src);
  cudaFree(dst);
  (void)cudaGetLastError();
}

// What one benchmark runs: a call on tensors it owns, and the bytes that call must move.
struct Workload {
  double bytes = 0;
  std::function<void()> call;
};

inline Tensor random_on_gpu(const Shape& shape) {
  static Generator gen(1234);
  return randn(shape, gen, DType::Float32, kGpu);
}

// Milliseconds of `calls` calls of `run` between two events on the backend's stream.
inline double time_batch(cudaStream_t stream, cudaEvent_t start, cudaEvent_t stop, int calls,
                         const std::function<void()>& run) {
  cudaEventRecord(start, stream);
  for (int i = 0; i < calls; ++i) run();
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  return ms;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

// The 10th to 90th percentile range of the batches, in % of their median: two entries whose
// medians are closer than this are not told apart (scripts/device_tables.py calls them a tie).
inline double spread_percent(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : 100.0 * (v[v.size() * 9 / 10] - v[v.size() / 10]) / v[v.size() / 2];
}

struct Events {
  cudaEvent_t start = nullptr, stop = nullptr;
  Events() {
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
  }
  ~Events() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
};

// Times make(size)'s workload as a manual-time benchmark: 3 warm-up batches, then one batch of
// calls_per_batch(size) calls per iteration, between events on the backend's stream (so Google
// Benchmark's own Time column is per batch: calls/batch says how many). Returns the median
// batch's milliseconds per call, or a negative value after marking the benchmark skipped (no
// GPU, an exception, or a failed CUDA call); sets the counters calls/batch and spread_%.
inline double time_workload(benchmark::State& state, Workload (*make)(Size), Size size,
                            double& bytes) {
  if (!device_present()) {
    state.SkipWithError("skipped: no CUDA device");
    return -1;
  }
  try {
    NoGradGuard no_grad;  // forward ops and optimiser steps: no graph
    const Workload w = make(size);
    bytes = w.bytes;
    const int calls = calls_per_batch(size);
    const cudaStream_t stream = cuda::current_stream(0);
    Events ev;
    for (int i = 0; i < 3; ++i) time_batch(stream, ev.start, ev.stop, calls, w.call);
    std::vector<double> ms;
    for (auto _ : state) {
      ms.push_back(time_batch(stream, ev.start, ev.stop, calls, w.call));
      state.SetIterationTime(ms.back() / 1e3);
    }
    if (cudaGetLastError() != cudaSuccess) {
      state.SkipWithError("a CUDA call failed");
      return -1;
    }
    state.counters["calls/batch"] = calls;
    state.counters["spread_%"] = spread_percent(ms);
    return median(ms) / calls;
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return -1;
  }
}

}  // namespace tg::bench
