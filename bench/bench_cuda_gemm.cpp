// GPU GEMM benchmarks: every SGEMM version of the registry (kernels/cuda/sgemm) against cuBLAS
// SGEMM with TF32 off (true float32, the yardstick) and, labelled, cuBLAS with TF32 on (tensor
// cores on inputs rounded to 10-bit mantissas: faster, not float32-exact, not a fair target).
//
// Shapes are written M x K x N: C[M, N] = A[M, K] @ B[K, N], row-major, float32. Squares 1024,
// 2048, 4096, and the nanda step's GEMMs (B = 3830 examples): 3830x128x512 (the MLP's W_in),
// 3830x512x128 (its W_out, K = 512, which split-K runs in 5 slices), and two weight gradients
// x^T @ dy, run with A transposed as backward runs it: 512x3830x128 (W_in's, A stored
// [3830, 512]) and 128x3830x113 (the unembedding's); and the unembedding itself, 3830x128x113,
// and its input gradient, 3830x113x128 (rows of 113 floats, not 16-byte aligned: the versions
// that need them decline).
//
// sgemm/v9_<tiling>/<shape> is v9's kernel at another block tiling than its 64 x 64
// (kernels/cuda/sgemm/mma_tilings.h: "32x64k16s3w2" is 32 x 64 a block, K tiles of 16, 3
// stages, 2 warps), run whole as the version entries are: which tiling suits which shape.
//
// sgemm/engine/<shape> is what the backend runs for the shape: tg::cuda::sgemm() on the
// backend's stream, which splits a product of few output tiles and a K of 64 or more (the
// weight gradient 512x3830x128_AT, the unembedding: split_k.cu) where each version entry runs
// it whole.
//
// Timing: CUDA events around a batch of back-to-back launches (20 for the model shapes, fewer
// as a product grows, one at 2048 and up), so that the host's launch latency, paid once when
// the stream is idle, is not counted as the kernel's; manual time, at least 0.1 s of it per
// entry, after 3 warm-up launches. The counters use the median batch per launch: GFLOP/s =
// 2 M N K / median, %cuBLAS = cuBLAS TF32-off's median / this median (and, for a version on
// TF32 tensor cores, %cuBLAS_TF32 against cuBLAS with TF32 on, its like), spread_% = the
// 10th-90th percentile range of the batches over the median. Before timing, each
// entry's output is compared with cuBLAS TF32-off (rel_err counter); a wrong one is reported
// as an error, not timed. The model shapes' inputs fit in L2 (so do the squares up to 2048),
// as they would when the training step reruns them.
//   ./build/bench/bench_cuda_gemm --benchmark_counters_tabular=true
// Without a CUDA device every benchmark reports "skipped: no CUDA device".
#include <benchmark/benchmark.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cuda_bench_util.h"
#include "kernels/cuda/sgemm/mma_tilings.h"
#include "kernels/cuda/sgemm/sgemm.h"
#include "kernels/cuda/stream.h"

using namespace tg::cuda;
using tg::bench::device_present;
using tg::bench::median;
using tg::bench::spread_percent;

namespace {

struct Shape {
  int M, K, N;
  bool trans_a;
  std::string name() const {
    return std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N) +
           (trans_a ? "_AT" : "");
  }
  double flops() const { return 2.0 * M * K * N; }
  bool operator<(const Shape& o) const {
    return std::tie(M, K, N, trans_a) < std::tie(o.M, o.K, o.N, o.trans_a);
  }
};

const Shape kShapes[] = {
    {1024, 1024, 1024, false}, {2048, 2048, 2048, false}, {4096, 4096, 4096, false},
    {3830, 128, 512, false},   {3830, 512, 128, false},   {512, 3830, 128, true},
    {128, 3830, 113, true},    {3830, 128, 113, false},   {3830, 113, 128, false},
};

// Records a CUDA or cuBLAS failure as the benchmark's error; true when all is well.
bool cuda_ok(benchmark::State& state, cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  state.SkipWithError((std::string(what) + ": " + cudaGetErrorString(e)).c_str());
  return false;
}
bool cublas_ok(benchmark::State& state, cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return true;
  state.SkipWithError((std::string(what) + ": cuBLAS status " + std::to_string(s)).c_str());
  return false;
}

// A, B and C of one shape on the device, A and B uniform in [-1, 1).
struct Problem {
  Shape shape;
  float *a = nullptr, *b = nullptr, *c = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;

  bool init(benchmark::State& state, const Shape& s) {
    shape = s;
    const size_t na = size_t(s.M) * s.K, nb = size_t(s.K) * s.N, nc = size_t(s.M) * s.N;
    std::vector<float> host(std::max(na, nb));
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto upload = [&](float* dst, size_t n) {
      for (size_t i = 0; i < n; ++i) host[i] = u(rng);
      return cuda_ok(state, cudaMemcpy(dst, host.data(), n * 4, cudaMemcpyHostToDevice), "upload");
    };
    return cuda_ok(state, cudaMalloc(reinterpret_cast<void**>(&a), na * 4), "cudaMalloc A") &&
           cuda_ok(state, cudaMalloc(reinterpret_cast<void**>(&b), nb * 4), "cudaMalloc B") &&
           cuda_ok(state, cudaMalloc(reinterpret_cast<void**>(&c), nc * 4), "cudaMalloc C") &&
           upload(a, na) && upload(b, nb) &&
           cuda_ok(state, cudaEventCreate(&start), "cudaEventCreate") &&
           cuda_ok(state, cudaEventCreate(&stop), "cudaEventCreate");
  }
  ~Problem() {
    cudaFree(a), cudaFree(b), cudaFree(c);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }

  // A is stored [M, K], or [K, M] and used transposed; B [K, N]; C [M, N]; all tight.
  GemmArgs args() const {
    GemmArgs g;
    g.M = shape.M, g.N = shape.N, g.K = shape.K;
    g.A = a, g.lda = shape.trans_a ? shape.M : shape.K, g.trans_a = shape.trans_a;
    g.B = b, g.ldb = shape.N;
    g.C = c, g.ldc = shape.N;
    return g;
  }

  std::vector<float> download_c() const {
    std::vector<float> out(size_t(shape.M) * shape.N);
    cudaMemcpy(out.data(), c, out.size() * 4, cudaMemcpyDeviceToHost);
    return out;
  }
};

// cuBLAS handles, one per math mode, created on first use.
cublasHandle_t cublas_handle(bool tf32) {
  static cublasHandle_t handles[2] = {nullptr, nullptr};
  cublasHandle_t& h = handles[tf32];
  if (!h && cublasCreate(&h) == CUBLAS_STATUS_SUCCESS)
    cublasSetMathMode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
  return h;
}

// Row-major C = op(A) @ B as column-major C^T = B^T @ op(A)^T (see tests/test_cuda_sgemm.cpp).
cublasStatus_t cublas_sgemm(bool tf32, const GemmArgs& g) {
  const float one = 1.0f, zero = 0.0f;
  return cublasSgemm(cublas_handle(tf32), g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                     g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, g.N, g.M, g.K, &one, g.B,
                     static_cast<int>(g.ldb), g.A, static_cast<int>(g.lda), &zero, g.C,
                     static_cast<int>(g.ldc));
}

// Launches per timed batch: enough that a few microseconds of launch latency are a small part
// of the batch (about 20 GFLOP of work, 1 to 20 launches).
int launches_per_batch(const Shape& shape) {
  return static_cast<int>(std::clamp<long>(std::lround(2e10 / shape.flops()), 1, 20));
}

// Milliseconds per launch of `run`, over a batch of launches between two events on `stream`
// (the legacy default stream unless given).
template <typename Run>
double time_launches(const Problem& p, Run run, cudaStream_t stream = nullptr) {
  const int launches = launches_per_batch(p.shape);
  cudaEventRecord(p.start, stream);
  for (int i = 0; i < launches; ++i) run();
  cudaEventRecord(p.stop, stream);
  cudaEventSynchronize(p.stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, p.start, p.stop);
  return ms / launches;
}

// cuBLAS's median time per shape and math mode (measured once, on first need): TF32 off is
// the 100% mark; TF32 on, the like of a version on tensor cores.
double cublas_median_ms(const Problem& p, bool tf32) {
  static std::map<std::pair<Shape, bool>, double> cache;
  auto it = cache.find({p.shape, tf32});
  if (it != cache.end()) return it->second;
  const GemmArgs g = p.args();
  auto run = [&] { cublas_sgemm(tf32, g); };
  for (int i = 0; i < 3; ++i) run();
  std::vector<double> ms;
  for (int i = 0; i < 30; ++i) ms.push_back(time_launches(p, run));
  return cache[{p.shape, tf32}] = median(ms);
}


// ||x - y|| / ||y||
double relative_error(const std::vector<float>& x, const std::vector<float>& y) {
  double d = 0, n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    d += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    n += double(y[i]) * y[i];
  }
  return std::sqrt(d / n);
}

// The timed loop shared by all entries; sets the counters from the median.
template <typename Run>
void timed_loop(benchmark::State& state, const Problem& p, Run run,
                cudaStream_t stream = nullptr, bool tf32 = false) {
  for (int i = 0; i < 3; ++i) run();
  std::vector<double> ms;
  for (auto _ : state) {
    ms.push_back(time_launches(p, run, stream));
    state.SetIterationTime(ms.back() * launches_per_batch(p.shape) / 1e3);
  }
  state.counters["launches/batch"] = launches_per_batch(p.shape);
  if (!cuda_ok(state, cudaGetLastError(), "timed launches")) return;
  const double med = median(ms);
  state.counters["median_ms"] = med;
  state.counters["GFLOP/s"] = p.shape.flops() / (med / 1e3) / 1e9;
  state.counters["spread_%"] = spread_percent(ms);
  state.counters["%cuBLAS"] = 100.0 * cublas_median_ms(p, false) / med;
  if (tf32) state.counters["%cuBLAS_TF32"] = 100.0 * cublas_median_ms(p, true) / med;
}

void BM_sgemm_version(benchmark::State& state, const SgemmVersion* version, Shape shape) {
  if (!device_present()) return state.SkipWithError("skipped: no CUDA device");
  const SgemmVersion& v = *version;
  Problem p;
  if (!p.init(state, shape)) return;
  const GemmArgs g = p.args();
  if (!v.supports(g)) return state.SkipWithError("this version declines these arguments");
  // Correct before fast: compare with cuBLAS TF32-off on the same inputs (within 1e-5, or 5e-3
  // for a version on TF32 tensor cores, whose inputs are rounded to 10 mantissa bits, as in
  // test_cuda_sgemm).
  if (!cublas_ok(state, cublas_sgemm(false, g), "cublasSgemm")) return;
  if (!cuda_ok(state, cudaDeviceSynchronize(), "cublasSgemm")) return;
  const std::vector<float> expected = p.download_c();
  cudaMemset(p.c, 0xFF, expected.size() * 4);  // NaN: unwritten elements fail the check
  try {
    v.run(g, nullptr);
  } catch (const std::exception& e) {
    return state.SkipWithError(e.what());
  }
  if (!cuda_ok(state, cudaDeviceSynchronize(), v.name)) return;
  const double err = relative_error(p.download_c(), expected);
  state.counters["rel_err"] = err;
  const double tolerance = v.tf32 ? 5e-3 : 1e-5;
  if (!(err < tolerance)) {
    return state.SkipWithError(v.tf32 ? "wrong result: rel_err vs cuBLAS >= 5e-3 (TF32)"
                                      : "wrong result: rel_err vs cuBLAS >= 1e-5");
  }
  try {
    timed_loop(state, p, [&] { v.run(g, nullptr); }, nullptr, v.tf32);
  } catch (const std::exception& e) {  // an exception escaping the benchmark aborts the program
    state.SkipWithError(e.what());
  }
}

// What the backend runs: sgemm() (split-K where it splits) on the backend's stream, which does
// not wait for the default stream, hence the device-wide waits around the check.
void BM_engine(benchmark::State& state, Shape shape) {
  if (!device_present()) return state.SkipWithError("skipped: no CUDA device");
  Problem p;
  if (!p.init(state, shape)) return;
  const GemmArgs g = p.args();
  const cudaStream_t stream = current_stream(0);
  if (!cublas_ok(state, cublas_sgemm(false, g), "cublasSgemm")) return;
  if (!cuda_ok(state, cudaDeviceSynchronize(), "cublasSgemm")) return;
  const std::vector<float> expected = p.download_c();
  cudaMemset(p.c, 0xFF, expected.size() * 4);  // NaN: unwritten elements fail the check
  if (!cuda_ok(state, cudaDeviceSynchronize(), "cudaMemset")) return;
  try {
    sgemm(g, stream);
    if (!cuda_ok(state, cudaDeviceSynchronize(), "sgemm")) return;
    const double err = relative_error(p.download_c(), expected);
    state.counters["rel_err"] = err;
    state.counters["split_k"] = static_cast<double>(split_k_slice(g));  // 0: run whole
    if (!(err < 1e-5)) return state.SkipWithError("wrong result: rel_err vs cuBLAS >= 1e-5");
    timed_loop(state, p, [&] { sgemm(g, stream); }, stream);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void BM_cublas(benchmark::State& state, bool tf32, Shape shape) {
  if (!device_present()) return state.SkipWithError("skipped: no CUDA device");
  Problem p;
  if (!p.init(state, shape)) return;
  const GemmArgs g = p.args();
  if (!cublas_handle(tf32)) return state.SkipWithError("cublasCreate failed");
  if (!cublas_ok(state, cublas_sgemm(false, g), "cublasSgemm")) return;
  const std::vector<float> fp32 = p.download_c();
  if (!cublas_ok(state, cublas_sgemm(tf32, g), "cublasSgemm")) return;
  state.counters["rel_err"] = relative_error(p.download_c(), fp32);  // TF32: about 1e-4 to 1e-3
  state.SetLabel(tf32 ? "TF32 on: tensor cores, not float32-exact" : "TF32 off: float32");
  timed_loop(state, p, [&] { cublas_sgemm(tf32, g); });
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!device_present()) std::printf("bench_cuda_gemm: no CUDA device; every benchmark skips\n");
  tg::bench::warm_up_gpu();
  for (const Shape& s : kShapes) {
    benchmark::RegisterBenchmark(("sgemm/cublas_fp32/" + s.name()).c_str(), BM_cublas, false, s)
        ->UseManualTime()
        ->MinTime(0.1)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("sgemm/cublas_tf32/" + s.name()).c_str(), BM_cublas, true, s)
        ->UseManualTime()
        ->MinTime(0.1)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("sgemm/engine/" + s.name()).c_str(), BM_engine, s)
        ->UseManualTime()
        ->MinTime(0.1)
        ->Unit(benchmark::kMicrosecond);
    for (const SgemmVersion& v : sgemm_versions()) {
      const std::string name =
          "sgemm/v" + std::to_string(v.number) + "_" + v.name + "/" + s.name();
      benchmark::RegisterBenchmark(name.c_str(), BM_sgemm_version, &v, s)
          ->UseManualTime()
          ->MinTime(0.1)
          ->Unit(benchmark::kMicrosecond);
    }
    for (const SgemmVersion& t : mma_tilings()) {
      const std::string name = std::string("sgemm/v9_") + t.name + "/" + s.name();
      benchmark::RegisterBenchmark(name.c_str(), BM_sgemm_version, &t, s)
          ->UseManualTime()
          ->MinTime(0.1)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
