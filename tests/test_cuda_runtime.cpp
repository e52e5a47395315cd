// CUDA runtime tests: host <-> device round trips of every dtype over awkward shapes and
// non-contiguous views, the strided copy kernel with dtype conversion, fill, fill_random equal to
// the CPU's for the same (seed, counter), the caching allocator's reuse, error messages, and
// cuBLAS running on the backend's stream; then the elementwise and reduction kernels against the
// CPU backend on awkward, strided and broadcast views, and a backward pass that uses only them.
// Every case skips visibly without a GPU.
#include <catch2/catch.hpp>
#ifndef TG_CUDA_HOST_EMULATION  // no cuBLAS on the emulated device (tests/cuda_emulation)
#include <cublas_v2.h>
#endif
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda_compare.h"
#include "kernels/backend.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/dependent_launch.h"
#include "kernels/cuda/device_caching_allocator.h"
#include "kernels/cuda/stream.h"
#include "test_cuda_support.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using tg::testing::check_matches_cpu;
using tg::testing::random_values;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const Device kGpu = Device::cuda(0);

const std::vector<Shape> kAwkwardShapes = {{}, {0}, {1}, {7}, {3, 5}, {1031}, {17, 1, 33},
                                           {2, 3, 4, 5}, {0, 4}, {3, 1, 2, 1, 7}};

// Distinct, exactly representable values 0, 1, 2, ... (negated on odd positions) of `dtype`.
Tensor pattern(const Shape& shape, DType dtype) {
  const int64_t n = numel(shape);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = (i % 2 ? -1.0 : 1.0) * static_cast<double>(i);
  return from_vector(v, {n}).reshape(shape).to(dtype);
}

// Bitwise equality of two tensors' values (read through to_vector, as doubles), and their shape.
void check_same(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == want.dtype());
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  REQUIRE((g.empty() || std::memcmp(g.data(), w.data(), g.size() * sizeof(double)) == 0));
}

double relative_error(const std::vector<double>& got, const std::vector<double>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

}  // namespace

TEST_CASE("cuda runtime: the backend of cuda:0", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  CHECK(backend_for(kGpu).device() == kGpu);
  const Tensor t = Tensor::empty({3}, DType::Float32, kGpu);
  CHECK(t.device() == kGpu);
  CHECK(t.storage()->nbytes() == 12);
}

TEST_CASE("cuda runtime: host -> device -> host round trips of every dtype", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    for (const Shape& shape : kAwkwardShapes) {
      INFO(dtype_name(dtype) << " " << shape_str(shape));
      const Tensor host = pattern(shape, dtype);
      const Tensor dev = host.to(kGpu);
      CHECK(dev.device() == kGpu);
      CHECK(dev.is_contiguous());
      check_same(dev.to(Device::cpu()), host);
      check_same(dev, host);  // to_vector reads the device directly
    }
  }
  // int64 values beyond 2^53 survive (no trip through double on the way).
  const Tensor big = from_vector<int64_t>({(int64_t{1} << 62) + 1, -(int64_t{1} << 60) - 3});
  CHECK(big.to(kGpu).to(Device::cpu()).to_vector<int64_t>() == big.to_vector<int64_t>());
}

TEST_CASE("cuda runtime: non-contiguous views move both ways", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    INFO(dtype_name(dtype));
    const Tensor host = pattern({5, 6, 7}, dtype);
    const Tensor dev = host.to(kGpu);
    const auto views = [](const Tensor& t) {
      return std::vector<Tensor>{t.transpose(0, 2), t.permute({1, 2, 0}), t.slice(1, 1, 6, 2),
                                 t.slice(2, 5, 6).select(0, 3), t.select(1, 2).t(),
                                 t.slice(0, 0, 5, 4).slice(2, 1, 7, 3),
                                 t.select(0, 1).select(0, 1).expand({4, 7})};
    };
    const auto host_views = views(host), dev_views = views(dev);
    for (size_t i = 0; i < host_views.size(); ++i) {
      INFO("view " << i << " " << shape_str(host_views[i].shape()));
      CHECK_FALSE(host_views[i].is_contiguous());
      check_same(host_views[i].to(kGpu), host_views[i]);  // a CPU view to the device
      check_same(dev_views[i].to(Device::cpu()), host_views[i]);  // through the copy kernel
      check_same(dev_views[i].contiguous(), host_views[i]);
    }
  }
}

TEST_CASE("cuda runtime: copy converts dtypes into strided destinations", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  NoGradGuard no_grad;
  for (DType from : {DType::Float32, DType::Float64, DType::Int64}) {
    for (DType to : {DType::Float32, DType::Float64, DType::Int64}) {
      INFO(dtype_name(from) << " -> " << dtype_name(to));
      const Tensor src = pattern({4, 9}, from);
      // Into a transposed destination, and from a broadcast source.
      Tensor dst = zeros({9, 4}, to, kGpu);
      dst.t().copy_(src.to(kGpu));
      check_same(dst, src.to(to).t().contiguous());
      Tensor row = zeros({3, 9}, to, kGpu);
      row.copy_(src.select(0, 2).to(kGpu));
      check_same(row, src.select(0, 2).to(to).expand({3, 9}).contiguous());
      check_same(src.to(kGpu).to(to), src.to(to));  // Tensor::to(DType) on the device
    }
  }
  // Floats int64 cannot hold saturate and NaN becomes 0, as on the CPU (core/convert.h).
  for (DType from : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(from) << " -> int64, special values");
    const Tensor special =
        from_vector<double>({NAN, INFINITY, -INFINITY, 1e30, -1e30, 9.3e18, -9.3e18, -0.5, 2.5})
            .to(from);
    check_same(special.to(kGpu).to(DType::Int64), special.to(DType::Int64));
    Tensor sum = zeros({9}, DType::Int64, kGpu);  // zeros: INT64_MAX + 1 would overflow
    sum.add_(special.to(kGpu));
    check_same(sum, special.to(DType::Int64));
  }
  // Only the destination's own elements are written.
  Tensor dst = full({6, 8}, -1, DType::Float32, kGpu);
  dst.slice(1, 1, 8, 3).copy_(ones({6, 3}).to(kGpu));
  const auto v = dst.to_vector<float>();
  for (int64_t i = 0; i < 48; ++i) CHECK(v[i] == ((i % 8) % 3 == 1 ? 1.0f : -1.0f));
}

// add_ is copy's kernel adding instead of storing: the CPU's sums, for every pair of dtypes,
// into strided destinations and from broadcast sources.
TEST_CASE("cuda runtime: add_ converts and adds into strided destinations", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  NoGradGuard no_grad;
  for (DType from : {DType::Float32, DType::Float64, DType::Int64}) {
    for (DType to : {DType::Float32, DType::Float64, DType::Int64}) {
      INFO(dtype_name(from) << " -> " << dtype_name(to));
      const Tensor src = pattern({4, 9}, from);
      Tensor want = pattern({9, 4}, to);
      Tensor got = want.to(kGpu);
      want.t().add_(src);
      got.t().add_(src.to(kGpu));
      check_same(got, want);
      want.add_(src.select(1, 3));  // [4] broadcast over the rows
      got.add_(src.select(1, 3).to(kGpu));
      check_same(got, want);
    }
  }
}

TEST_CASE("cuda runtime: fill, whole and strided", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  NoGradGuard no_grad;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    for (const Shape& shape : kAwkwardShapes) {
      INFO(dtype_name(dtype) << " " << shape_str(shape));
      check_same(full(shape, 2.5, dtype, kGpu), full(shape, 2.5, dtype));
    }
    Tensor t = zeros({7, 10}, dtype, kGpu);
    t.slice(1, 0, 10, 2).slice(0, 1, 7, 3).fill_(-3);
    Tensor want = zeros({7, 10}, dtype);
    want.slice(1, 0, 10, 2).slice(0, 1, 7, 3).fill_(-3);
    check_same(t, want);
  }
}

TEST_CASE("cuda runtime: arange of int64 indices is made on the device, as the CPU's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  for (int64_t n : {0, 1, 7, 300}) {
    INFO("n = " << n);
    const Tensor gpu = arange(0, static_cast<double>(n), 1, DType::Int64, Device::cuda(0));
    CHECK(gpu.device() == Device::cuda(0));
    CHECK(gpu.shape() == Shape{n});
    CHECK(gpu.to_vector<int64_t>() == arange(n).to_vector<int64_t>());
  }
  // Other aranges still come through the host, with the same values.
  CHECK(arange(2, 11, 3, DType::Int64, Device::cuda(0)).to_vector<int64_t>() ==
        std::vector<int64_t>{2, 5, 8});
  REQUIRE_THROWS_WITH(backend_for(Device::cuda(0)).fill_iota(zeros({3}, DType::Float32, Device::cuda(0))),
                      Catch::Matchers::Contains("fill_iota: destination must be contiguous int64"));
}

TEST_CASE("cuda runtime: fill_random gives the CPU's numbers for a (seed, counter)", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  struct Kind {
    RandomKind kind;
    double a, b;
    const char* name;
  };
  // A width of 0.2 makes (high - low) * u inexact in float64: a multiply-add contracted into
  // an FMA on one device and not on the other then shows in the last bit.
  const Kind kinds[] = {{RandomKind::Uniform, -1.5, 2.0, "uniform"},
                        {RandomKind::Uniform, 1.0, 2.0, "uniform [1, 2)"},
                        {RandomKind::Uniform, -0.1, 0.1, "uniform [-0.1, 0.1)"},
                        {RandomKind::Normal, 0.5, 2.0, "normal"},
                        {RandomKind::DropoutMask, 0.3, 0, "dropout mask"}};
  const uint64_t seeds[] = {0, 12345, 0xDEADBEEFCAFEF00Dull};
  const uint64_t counters[] = {0, 7, (uint64_t{1} << 40) + 3};
  for (const Kind& k : kinds) {
    for (DType dtype : {DType::Float32, DType::Float64}) {
      for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{1027}, int64_t{100003}}) {
        for (uint64_t seed : seeds) {
          for (uint64_t counter : counters) {
            INFO(k.name << " " << dtype_name(dtype) << " n=" << n << " seed=" << seed
                        << " counter=" << counter);
            const Tensor cpu = Tensor::empty({n}, dtype);
            const Tensor gpu = Tensor::empty({n}, dtype, kGpu);
            backend_for(Device::cpu()).fill_random(cpu, k.kind, seed, counter, k.a, k.b);
            backend_for(kGpu).fill_random(gpu, k.kind, seed, counter, k.a, k.b);
            const auto want = cpu.to_vector<double>(), got = gpu.to_vector<double>();
            if (k.kind == RandomKind::Normal) {
              int64_t off = 0;
              for (size_t i = 0; i < want.size(); ++i)
                off += std::abs(got[i] - want[i]) > 1e-6 * std::abs(want[i]) + 1e-300;
              CHECK(off == 0);
            } else {
              CHECK((got.empty() ||
                     std::memcmp(got.data(), want.data(), got.size() * sizeof(double)) == 0));
            }
          }
        }
      }
    }
  }
  // Through the factories and a Generator, as dropout and initialisers draw.
  Generator on_cpu(42), on_gpu(42);
  check_same(rand({333, 3}, on_gpu, DType::Float32, kGpu), rand({333, 3}, on_cpu));
  CHECK(on_cpu.offset() == on_gpu.offset());
}

TEST_CASE("cuda runtime: dependent launches are on only with TG_CUDA_PDL=1 and Hopper code",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  // scripts/device_check.sh runs the CUDA tests again with TG_CUDA_PDL=1: this says whether the
  // kernels then really overlapped.
  const char* env = std::getenv("TG_CUDA_PDL");
  const bool requested = env != nullptr && std::strcmp(env, "1") == 0;
  int major = 0;
  REQUIRE(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess);
  const int code = cuda::kernel_ptx_version(0);
  const bool on = cuda::dependent_launches(0);
  WARN("dependent launches " << (on ? "on" : "off") << " (TG_CUDA_PDL "
                             << (env ? env : "unset") << ", compute capability " << major
                             << ", kernels compiled for compute_" << code << ")");
  CHECK(on == (requested && major >= 9 && code >= 90));
}

TEST_CASE("cuda runtime: the caching allocator hands freed blocks out again", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  cuda::DeviceCachingAllocator& allocator = cuda::device_allocator(0);
  allocator.clear();  // so that the blocks below are the only ones cached
  size_t capacity = 0, again = 0;
  void* block = allocator.allocate(1000, capacity);
  CHECK(capacity >= 1000);
  CHECK(reinterpret_cast<uintptr_t>(block) % 256 == 0);
  allocator.release(block, capacity);
  CHECK(allocator.cached_bytes() >= capacity);
  CHECK(allocator.allocate(1000, again) == block);
  CHECK(again == capacity);
  // A much larger request does not take it; a freed large block is not pinned by a tiny tensor.
  size_t big_capacity = 0;
  void* big = allocator.allocate(10 << 20, big_capacity);
  allocator.release(big, big_capacity);
  size_t small_capacity = 0;
  void* small = allocator.allocate(100, small_capacity);
  CHECK(small != big);
  allocator.release(small, small_capacity);
  allocator.release(block, capacity);

  // Through tensors: a dropped tensor's block serves the next one of the same size.
  const void* first = nullptr;
  {
    const Tensor t = Tensor::empty({1000, 3}, DType::Float32, kGpu);
    first = t.raw_data();
  }
  const Tensor u = Tensor::empty({3000}, DType::Float32, kGpu);
  CHECK(u.raw_data() == first);

  allocator.clear();
  CHECK(allocator.cached_bytes() == 0);
}

TEST_CASE("cuda runtime: errors name the device, the call and CUDA's reason", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  int count = 0;
  REQUIRE(cudaGetDeviceCount(&count) == cudaSuccess);
  const Device missing = Device::cuda(count);  // cuda:7 on a machine with 7 GPUs, ...
  const auto has = Contains(count == 1 ? std::string("this machine has only 1 CUDA device (cuda:0)")
                                       : "this machine has " + std::to_string(count) +
                                             " CUDA devices");
  REQUIRE_TG_ERROR(backend_for(missing), StartsWith("device " + missing.str() + ": ") && has);
  if (count <= 7)
    REQUIRE_TG_ERROR(backend_for(Device::cuda(7)), StartsWith("device cuda:7: ") && has);
  REQUIRE_TG_ERROR(zeros({2}, DType::Float32, Device::cuda(7 + count)), has);
  REQUIRE_TG_ERROR(ones({2}).to(missing), has);

  // A failing runtime call: the call's text, where, and CUDA's error string and name.
  REQUIRE_TG_ERROR([&] { TG_CUDA_CHECK(cudaSetDevice(count + 5)); }(),
                   StartsWith("cuda: cudaSetDevice(count + 5) failed at ") &&
                       Contains("test_cuda_runtime.cpp:") && Contains("invalid device ordinal") &&
                       Contains("cudaErrorInvalidDevice"));
  REQUIRE_TG_ERROR([] { TG_CUBLAS_CHECK(CUBLAS_STATUS_NOT_INITIALIZED); }(),
                   Contains("CUBLAS_STATUS_NOT_INITIALIZED"));
  REQUIRE(cudaGetLastError() == cudaSuccess);  // the failure above is not reported again

  // Host transfers want contiguous tensors.
  const Tensor x = ones({2, 3}, DType::Float32, kGpu);
  std::vector<float> host(6);
  REQUIRE_TG_ERROR(backend_for(kGpu).copy_to_host(x.t(), host.data()),
                   Contains("copy_to_host: source must be contiguous"));
  REQUIRE_TG_ERROR(backend_for(kGpu).fill_random(zeros({3}, DType::Int64, kGpu),
                                                 RandomKind::Uniform, 0, 0, 0, 1),
                   Contains("fill_random: not defined for int64"));
}

#ifndef TG_CUDA_HOST_EMULATION
TEST_CASE("cuda runtime: cuBLAS reads our tensors on the backend's stream", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  const int64_t M = 37, K = 53, N = 29;
  Generator gen(7);
  const Tensor a = uniform({M, K}, -1, 1, gen), b = uniform({K, N}, -1, 1, gen);
  const Tensor da = a.to(kGpu), db = b.to(kGpu);
  Tensor dc = full({M, N}, std::nan(""), DType::Float32, kGpu);  // poisoned: unwritten shows
  cublasHandle_t handle = nullptr;
  TG_CUBLAS_CHECK(cublasCreate(&handle));
  TG_CUBLAS_CHECK(cublasSetStream(handle, cuda::current_stream(0)));
  const float one = 1, zero = 0;
  // Row-major C = A B is column-major C^T = B^T A^T.
  TG_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, db.data<float>(),
                              N, da.data<float>(), K, &zero, dc.data<float>(), N));
  const auto got = dc.to_vector<double>();  // waits for the stream
  TG_CUBLAS_CHECK(cublasDestroy(handle));
  CHECK(relative_error(got, a.matmul(b).to_vector<double>()) < 1e-5);
}
#endif

// tg::matmul on the GPU runs our SGEMM (the best version for the arguments): the same products as
// the CPU's Eigen GEMM, for plain, transposed and batched (broadcast) operands of awkward sizes.
TEST_CASE("cuda runtime: matmul equals the CPU's for plain, transposed and batched views",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(7);
  auto compare = [](const Tensor& cpu_a, const Tensor& cpu_b, auto&& view_a, auto&& view_b) {
    const Tensor ref = matmul(view_a(cpu_a), view_b(cpu_b));
    const Tensor gpu = matmul(view_a(cpu_a.to(kGpu)), view_b(cpu_b.to(kGpu))).to(Device::cpu());
    REQUIRE(gpu.shape() == ref.shape());
    const std::vector<double> g = gpu.to_vector<double>(), r = ref.to_vector<double>();
    double diff = 0, norm = 0;
    for (size_t i = 0; i < r.size(); ++i) {
      diff += (g[i] - r[i]) * (g[i] - r[i]);
      norm += r[i] * r[i];
    }
    CHECK(std::sqrt(diff / std::max(norm, 1e-30)) < 1e-5);
  };
  auto same = [](const Tensor& t) { return t; };
  auto transposed = [](const Tensor& t) { return t.transpose(-2, -1); };
  for (auto [m, k, n] : {std::array<int64_t, 3>{3830, 128, 113}, {129, 77, 33}, {1, 1, 1}}) {
    INFO(m << "x" << k << "x" << n);
    compare(randn({m, k}, gen), randn({k, n}, gen), same, same);
    compare(randn({k, m}, gen), randn({k, n}, gen), transposed, same);  // dW = x^T @ dy
    compare(randn({m, k}, gen), randn({n, k}, gen), same, transposed);  // dx = dy @ W^T
  }
  compare(randn({5, 37, 19}, gen), randn({19, 23}, gen), same, same);  // B broadcast over a batch
  compare(randn({2, 3, 9, 8}, gen), randn({2, 3, 6, 8}, gen), same, transposed);  // batched
  REQUIRE_TG_ERROR(matmul(zeros({2, 2}, DType::Float64, kGpu), zeros({2, 2}, DType::Float64, kGpu)),
                   Contains("float32 only"));
}

// head_matmul writes each head's product into its [N, H, e] output as one batched SGEMM with
// interleaved output rows (stride_c one head, ldc all of them): the CPU's values, forward and
// backward, with the rows broadcast over the heads (the attention's projections) or not, at the
// nanda shapes (16-byte rows: v7) and odd ones (v5).
TEST_CASE("cuda runtime: head_matmul, forward and backward, equals the CPU's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(8);
  struct Case {
    int64_t rows, heads, d, e;
    bool broadcast;
  };
  for (const Case& c : {Case{342, 4, 128, 32, true}, Case{342, 4, 32, 128, false},
                        Case{37, 3, 5, 9, true}, Case{1, 2, 3, 1, false}}) {
    INFO(c.rows << " rows, " << c.heads << " heads, " << c.d << " -> " << c.e
                << (c.broadcast ? ", broadcast" : ""));
    const Shape x_shape = c.broadcast ? Shape{c.rows, c.d} : Shape{c.rows, c.heads, c.d};
    const Tensor x0 = randn(x_shape, gen), W0 = randn({c.heads, c.d, c.e}, gen);
    const Tensor weights = randn({c.rows, c.heads, c.e}, gen);
    std::vector<double> values[2], dx[2], dW[2];
    for (int on_gpu = 0; on_gpu < 2; ++on_gpu) {
      const Device device = on_gpu ? kGpu : Device::cpu();
      const Tensor x = x0.to(device).requires_grad_(), W = W0.to(device).requires_grad_();
      const Tensor x_heads = c.broadcast ? x.unsqueeze(1).expand({c.rows, c.heads, c.d}) : x;
      const Tensor y = head_matmul(x_heads, W);
      (y * weights.to(device)).sum().backward();
      values[on_gpu] = y.to_vector<double>();
      dx[on_gpu] = x.grad().to_vector<double>();
      dW[on_gpu] = W.grad().to_vector<double>();
    }
    CHECK(relative_error(values[1], values[0]) < 1e-5);
    CHECK(relative_error(dx[1], dx[0]) < 1e-5);
    CHECK(relative_error(dW[1], dW[0]) < 1e-5);
  }
}

// matmul_into_grouped runs products of one shape over operands in separate buffers as one
// grouped SGEMM (the attention's W_Q, W_K, W_V on the table's rows; dW_Q, dW_K, dW_V): each
// output equals the same product made alone on the GPU, bit for bit, and the CPU's; products
// whose layouts differ fall back to one launch each, with the same results.
TEST_CASE("cuda runtime: matmul_into_grouped equals each product alone and the CPU's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(9);
  Backend& gpu = backend_for(kGpu);
  struct Case {
    int64_t rows, heads, d, e;
    int groups;
    bool transposed_weights;  // [H, e, d] weights read transposed: the backward's dx products
  };
  for (const Case& c : {Case{342, 4, 128, 32, 3, false}, Case{37, 3, 5, 9, 2, false},
                        Case{37, 3, 5, 9, 3, true}, Case{1, 1, 3, 1, 3, false}}) {
    INFO(c.groups << " groups, " << c.rows << " rows, " << c.heads << " heads, " << c.d
                  << " -> " << c.e << (c.transposed_weights ? ", weights transposed" : ""));
    const Tensor x = randn({c.rows, c.d}, gen);
    const Tensor x_heads = x.unsqueeze(0).expand({c.heads, c.rows, c.d});  // stride 0 batch
    std::vector<Tensor> weights, as, bs;
    for (int g = 0; g < c.groups; ++g) {
      weights.push_back(c.transposed_weights ? randn({c.heads, c.e, c.d}, gen)
                                             : randn({c.heads, c.d, c.e}, gen));
      as.push_back(x_heads);
      bs.push_back(c.transposed_weights ? weights.back().transpose(1, 2) : weights.back());
    }
    // Outputs [rows, H, e] written through their [H, rows, e] views, as head_matmul writes.
    auto outputs = [&](Device device) {
      std::vector<Tensor> out;
      for (int g = 0; g < c.groups; ++g)
        out.push_back(zeros({c.rows, c.heads, c.e}, DType::Float32, device).permute({1, 0, 2}));
      return out;
    };
    // The GPU's operands keep the CPU's views: x broadcast, weights transposed.
    std::vector<Tensor> gpu_as, gpu_bs;
    const Tensor gpu_x = x.to(kGpu);
    for (int g = 0; g < c.groups; ++g) {
      gpu_as.push_back(gpu_x.unsqueeze(0).expand({c.heads, c.rows, c.d}));
      const Tensor w = weights[static_cast<size_t>(g)].to(kGpu);
      gpu_bs.push_back(c.transposed_weights ? w.transpose(1, 2) : w);
    }
    const std::vector<Tensor> grouped = outputs(kGpu), alone = outputs(kGpu),
                              cpu = outputs(Device::cpu());
    gpu.matmul_into_grouped(gpu_as, gpu_bs, grouped);
    for (int g = 0; g < c.groups; ++g)
      gpu.matmul_into(gpu_as[static_cast<size_t>(g)], gpu_bs[static_cast<size_t>(g)],
                      alone[static_cast<size_t>(g)]);
    backend_for(Device::cpu()).matmul_into_grouped(as, bs, cpu);
    for (int g = 0; g < c.groups; ++g) {
      INFO("group " << g);
      const std::vector<float> got = grouped[static_cast<size_t>(g)].to_vector<float>();
      CHECK(got == alone[static_cast<size_t>(g)].to_vector<float>());
      CHECK(relative_error(grouped[static_cast<size_t>(g)].to_vector<double>(),
                           cpu[static_cast<size_t>(g)].to_vector<double>()) < 1e-5);
    }
  }
  // Layouts that differ (one weight transposed, one not) cannot share a launch: one each.
  const Tensor x = randn({6, 5}, gen).to(kGpu), w = randn({5, 4}, gen).to(kGpu);
  const Tensor wt = randn({4, 5}, gen).to(kGpu).t();
  const Tensor y1 = zeros({6, 4}, DType::Float32, kGpu), y2 = zeros({6, 4}, DType::Float32, kGpu);
  gpu.matmul_into_grouped({x, x}, {w, wt}, {y1, y2});
  CHECK(relative_error(y1.to_vector<double>(), matmul(x, w).to_vector<double>()) < 1e-6);
  CHECK(relative_error(y2.to_vector<double>(), matmul(x, wt).to_vector<double>()) < 1e-6);
  REQUIRE_TG_ERROR(gpu.matmul_into_grouped({x, x}, {w}, {y1, y2}),
                   "cuda: matmul_into_grouped: 2 left operands, 1 right operands and 2 outputs");
}

// matmul_sum adds every product of every group over the batch, and the residual: the attention
// table's input gradient. On the GPU one grouped SGEMM into a workspace and one sum in batch
// order; against the CPU's composition (products added group by group, a reduce over the batch,
// the residual added), for 1 to 3 groups, with and without a residual, transposed operands, and
// a layout mismatch that falls back to the composition.
TEST_CASE("cuda runtime: matmul_sum equals the CPU's composition", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(10);
  struct Case {
    int64_t rows, heads, e, d;
    int groups;
    bool residual;
  };
  for (const Case& c : {Case{342, 4, 32, 128, 3, true}, Case{37, 3, 9, 5, 3, false},
                        Case{37, 3, 9, 5, 2, true}, Case{5, 2, 7, 3, 1, true},
                        Case{1, 1, 1, 1, 3, true}}) {
    INFO(c.groups << " groups, " << c.rows << " rows, " << c.heads << " heads, " << c.e
                  << " -> " << c.d << (c.residual ? ", residual" : ""));
    // dy_g [rows, H, e] read as [H, rows, e]; W_g [H, d, e] read transposed as [H, e, d].
    std::vector<Tensor> dys, ws;
    for (int g = 0; g < c.groups; ++g) {
      dys.push_back(randn({c.rows, c.heads, c.e}, gen));
      ws.push_back(randn({c.heads, c.d, c.e}, gen));
    }
    const Tensor residual = c.residual ? randn({c.rows, c.d}, gen) : Tensor();
    auto run = [&](Device device) {
      std::vector<Tensor> as, bs;
      for (int g = 0; g < c.groups; ++g) {
        as.push_back(dys[static_cast<size_t>(g)].to(device).permute({1, 0, 2}));
        bs.push_back(ws[static_cast<size_t>(g)].to(device).transpose(1, 2));
      }
      return backend_for(device)
          .matmul_sum(as, bs, residual.defined() ? residual.to(device) : Tensor())
          .to_vector<double>();
    };
    const std::vector<double> gpu_sum = run(kGpu), cpu_sum = run(Device::cpu());
    REQUIRE(gpu_sum.size() == static_cast<size_t>(c.rows * c.d));
    CHECK(relative_error(gpu_sum, cpu_sum) < 1e-5);
  }
  // Mismatched layouts (the second right operand row-major, the first transposed): the
  // composition, with the same result.
  const Tensor a = randn({2, 6, 5}, gen), b1 = randn({2, 4, 5}, gen), b2 = randn({2, 5, 4}, gen);
  const Tensor r = randn({6, 4}, gen);
  const std::vector<double> expected =
      backend_for(Device::cpu()).matmul_sum({a, a}, {b1.transpose(1, 2), b2}, r).to_vector<double>();
  const std::vector<double> got =
      backend_for(kGpu)
          .matmul_sum({a.to(kGpu), a.to(kGpu)}, {b1.to(kGpu).transpose(1, 2), b2.to(kGpu)},
                      r.to(kGpu))
          .to_vector<double>();
  CHECK(relative_error(got, expected) < 1e-5);
  REQUIRE_TG_ERROR(backend_for(kGpu).matmul_sum({a.to(kGpu)}, {b2.to(kGpu)}, randn({6, 5}, gen).to(kGpu)),
                   "matmul_sum: residual [6, 5] float32 must be [6, 4] float32");
  REQUIRE_TG_ERROR(backend_for(kGpu).matmul_sum({a.to(kGpu), a.to(kGpu)}, {b2.to(kGpu)}, Tensor()),
                   "matmul_sum: 2 left and 1 right operands (at least one of each, as many of "
                   "each)");
}

// ---- elementwise and reduction kernels against the CPU backend --------------------------------

namespace {

using View = std::function<Tensor(const Tensor&)>;

struct ViewCase {
  std::string name;
  Shape base;  // the shape of the tensor the view is taken of
  View view;
};

// Awkward shapes, and views that are not contiguous: transposed, permuted, broadcast (stride 0)
// and sliced with steps.
std::vector<ViewCase> view_cases() {
  const View same = [](const Tensor& t) { return t; };
  return {
      {"[3, 5]", {3, 5}, same},
      {"[17, 1, 33]", {17, 1, 33}, same},
      {"[2, 3, 4, 5]", {2, 3, 4, 5}, same},
      {"[1031]", {1031}, same},
      {"0-d", {}, same},
      {"empty [0, 4]", {0, 4}, same},
      {"transposed [33, 1, 17]", {17, 1, 33}, [](const Tensor& t) { return t.transpose(0, 2); }},
      {"permuted [5, 3, 2, 4]", {2, 3, 4, 5},
       [](const Tensor& t) { return t.permute({3, 1, 0, 2}); }},
      {"broadcast [4, 1, 6] -> [4, 5, 6]", {4, 1, 6},
       [](const Tensor& t) { return t.expand({4, 5, 6}); }},
      {"stepped slices of [9, 12]", {9, 12},
       [](const Tensor& t) { return t.slice(0, 1, 9, 2).slice(1, 0, 12, 5); }},
  };
}

// `got` (a fresh contiguous GPU tensor) against `want` (the CPU's), as check_matches_cpu.
void check_close(const Tensor& got, const Tensor& want, double tolerance) {
  CHECK(got.is_contiguous());
  check_matches_cpu(got, want, tolerance);
}

}  // namespace

TEST_CASE("cuda elementwise: every unary op equals the CPU's on strided views", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  struct Op {
    UnaryOp op;
    const char* name;
    double param, lo, hi;
    bool exact;
  };
  const Op ops[] = {{UnaryOp::Neg, "neg", 0, -3, 3, true},
                    {UnaryOp::Exp, "exp", 0, -4, 4, false},
                    {UnaryOp::Log, "log", 0, 0.01, 10, false},
                    {UnaryOp::Sqrt, "sqrt", 0, 0, 10, false},
                    {UnaryOp::Tanh, "tanh", 0, -3, 3, false},
                    {UnaryOp::Relu, "relu", 0, -3, 3, true},
                    {UnaryOp::Step, "step", 0, -3, 3, true},
                    {UnaryOp::Gelu, "gelu", 0, -4, 4, false},
                    {UnaryOp::GeluGrad, "gelu grad", 0, -4, 4, false},
                    {UnaryOp::PowScalar, "pow 2.5", 2.5, 0, 3, false},
                    {UnaryOp::PowScalar, "pow -1", -1, 0.5, 3, false},
                    {UnaryOp::PowScalar, "pow 3 of negatives too", 3, -2, 2, false},
                    {UnaryOp::Scale, "scale", -0.37, -3, 3, false}};
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  uint32_t seed = 1;
  for (const Op& op : ops) {
    for (DType dtype : {DType::Float32, DType::Float64}) {
      for (const ViewCase& vc : view_cases()) {
        INFO(op.name << " " << dtype_name(dtype) << " " << vc.name);
        const Tensor base = random_values(vc.base, dtype, op.lo, op.hi, seed++);
        const Tensor want = cpu.unary(op.op, vc.view(base), op.param);
        check_close(gpu.unary(op.op, vc.view(base.to(kGpu)), op.param), want,
                    op.exact ? 0 : 1e-6);
      }
    }
  }
  // int64, computed through double as on the CPU.
  for (const Op& op : {Op{UnaryOp::Neg, "neg", 0, -9, 9, true},
                       Op{UnaryOp::Relu, "relu", 0, -9, 9, true},
                       Op{UnaryOp::Step, "step", 0, -9, 9, true},
                       Op{UnaryOp::PowScalar, "pow 2", 2, -9, 9, true},
                       Op{UnaryOp::Scale, "scale", 2.5, -9, 9, true}}) {
    for (const ViewCase& vc : view_cases()) {
      INFO(op.name << " int64 " << vc.name);
      const Tensor base = random_values(vc.base, DType::Int64, op.lo, op.hi, seed++, true);
      check_close(gpu.unary(op.op, vc.view(base.to(kGpu)), op.param),
                  cpu.unary(op.op, vc.view(base), op.param), 0);
    }
  }
  // The edges: step is 0 at both zeros, relu keeps NaN, neg flips the sign of zero. Zeros and
  // infinities bit for bit; a NaN only as a NaN: PTX leaves the sign and payload of a NaN that
  // neg.f32 returns unspecified (the H200 gives another NaN than the CPU's -NaN).
  const std::vector<float> edges = {0.0f, -0.0f, NAN, 1.0f, -1.0f, INFINITY, -INFINITY};
  for (UnaryOp op : {UnaryOp::Step, UnaryOp::Relu, UnaryOp::Neg}) {
    const Tensor x = from_vector(edges);
    const std::vector<float> got = gpu.unary(op, x.to(kGpu), 0).to_vector<float>();
    const std::vector<float> want = cpu.unary(op, x, 0).to_vector<float>();
    for (size_t i = 0; i < edges.size(); ++i) {
      INFO("unary op " << static_cast<int>(op) << " of " << edges[i] << ": got " << got[i]
                       << ", want " << want[i]);
      if (std::isnan(want[i])) CHECK(std::isnan(got[i]));
      else CHECK(std::memcmp(&got[i], &want[i], sizeof(float)) == 0);
    }
  }
}

TEST_CASE("cuda elementwise: every binary op equals the CPU's, broadcast and strided", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  using Fn = std::function<Tensor(const Tensor&, const Tensor&)>;
  struct Op {
    Fn fn;
    const char* name;
    bool comparison;
  };
  const std::vector<Op> ops = {
      {[](const Tensor& a, const Tensor& b) { return add(a, b); }, "add", false},
      {[](const Tensor& a, const Tensor& b) { return sub(a, b); }, "sub", false},
      {[](const Tensor& a, const Tensor& b) { return mul(a, b); }, "mul", false},
      {[](const Tensor& a, const Tensor& b) { return div(a, b); }, "div", false},
      {[](const Tensor& a, const Tensor& b) { return eq(a, b); }, "eq", true},
      {[](const Tensor& a, const Tensor& b) { return ne(a, b); }, "ne", true},
      {[](const Tensor& a, const Tensor& b) { return lt(a, b); }, "lt", true},
      {[](const Tensor& a, const Tensor& b) { return le(a, b); }, "le", true},
      {[](const Tensor& a, const Tensor& b) { return gt(a, b); }, "gt", true},
      {[](const Tensor& a, const Tensor& b) { return ge(a, b); }, "ge", true}};
  struct Pair {
    std::string name;
    Shape sa, sb;
    View va, vb;
  };
  const View same = [](const Tensor& t) { return t; };
  const std::vector<Pair> pairs = {
      {"[3, 5] and [3, 5]", {3, 5}, {3, 5}, same, same},
      {"[17, 1, 33] and [33]", {17, 1, 33}, {33}, same, same},
      {"[2, 3, 4, 5] and [3, 1, 5]", {2, 3, 4, 5}, {3, 1, 5}, same, same},
      {"[1031] and a 0-d tensor", {1031}, {}, same, same},
      {"transposed [5, 3] and [5, 1]", {3, 5}, {5, 1},
       [](const Tensor& t) { return t.transpose(0, 1); }, same},
      {"[4, 5, 6] and a transposed [4, 1, 6]", {4, 5, 6}, {6, 4}, same,
       [](const Tensor& t) { return t.t().unsqueeze(1); }},
      {"stepped slices and [1, 4]", {7, 12}, {1, 4},
       [](const Tensor& t) { return t.slice(0, 0, 7, 3).slice(1, 1, 12, 3); }, same},
      {"[0, 4] and [4]", {0, 4}, {4}, same, same}};
  uint32_t seed = 100;
  for (const Op& op : ops) {
    for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
      for (const Pair& p : pairs) {
        INFO(op.name << " " << dtype_name(dtype) << " " << p.name);
        const bool whole = op.comparison || dtype == DType::Int64;
        // Comparisons get many equal pairs; divisors stay away from 0.
        const Tensor a = random_values(p.sa, dtype, -3, 3, seed++, whole);
        const Tensor b = op.comparison ? random_values(p.sb, dtype, -3, 3, seed++, true)
                                       : random_values(p.sb, dtype, 1, 4, seed++, whole);
        const Tensor want = op.fn(p.va(a), p.vb(b));
        const Tensor got = op.fn(p.va(a.to(kGpu)), p.vb(b.to(kGpu)));
        check_close(got, want, whole ? 0 : 1e-6);
      }
    }
  }
  // Comparisons involving NaN, as IEEE (and the CPU) have them.
  const Tensor x = from_vector<double>({NAN, 1.0, NAN, -0.0}), y = from_vector<double>({NAN, NAN, 2.0, 0.0});
  for (const Op& op : ops) {
    INFO(op.name << " with NaNs");
    check_close(op.fn(x.to(kGpu), y.to(kGpu)), op.fn(x, y), 0);
  }
  // An integer division by zero is an error, as on the CPU, and names the first zero divisor.
  const Tensor num = from_vector<int64_t>({6, 7, 8, 9, 10}).to(kGpu);
  REQUIRE_TG_ERROR(div(num, from_vector<int64_t>({1, 2, 0, 3, 0}).to(kGpu)),
                   Contains("div: integer division by zero (element 2 of the divisor)"));
  REQUIRE_TG_ERROR(div(num, scalar(0, DType::Int64, kGpu)),
                   Contains("div: integer division by zero (element 0 of the divisor)"));
  check_close(div(num, from_vector<int64_t>({-4, 2, 3, -2, 7}).to(kGpu)),
              from_vector<int64_t>({-1, 3, 2, -4, 1}), 0);  // truncated towards zero
  // Overflow wraps around, as on the CPU (INT64_MIN / -1 included), and sums wrap too.
  const Tensor extremes = from_vector<int64_t>({INT64_MIN, INT64_MAX, INT64_MIN, -1});
  const Tensor others = from_vector<int64_t>({-1, 1, 2, INT64_MIN});
  for (const Op& op : ops) {
    INFO(op.name << " at the int64 extremes");
    check_close(op.fn(extremes.to(kGpu), others.to(kGpu)), op.fn(extremes, others), 0);
  }
  check_close(neg(extremes.to(kGpu)), neg(extremes), 0);
  const Tensor overflowing = from_vector<int64_t>({INT64_MAX, 1, INT64_MAX, 2}, {2, 2});
  for (int64_t axis : {0, 1})
    check_close(overflowing.to(kGpu).sum({axis}), overflowing.sum({axis}), 0);
  check_close(overflowing.to(kGpu).sum(), overflowing.sum(), 0);
}

// The contiguous kernels (16 bytes an access, kernels/cuda/elementwise.cu) against the strided
// ones, their reference, on the same values: every size around a whole number of 16-byte packs,
// bit for bit. The strided kernels get the values as every other element of a [n, 2] tensor,
// and as a contiguous run that starts one element past a 16-byte boundary.
TEST_CASE("cuda elementwise: the contiguous kernels give the strided kernels' bits", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& gpu = backend_for(kGpu);
  const std::vector<std::pair<UnaryOp, double>> float_unary = {
      {UnaryOp::Neg, 0},   {UnaryOp::Exp, 0},  {UnaryOp::Log, 0},      {UnaryOp::Sqrt, 0},
      {UnaryOp::Tanh, 0},  {UnaryOp::Relu, 0}, {UnaryOp::Step, 0},     {UnaryOp::Gelu, 0},
      {UnaryOp::GeluGrad, 0}, {UnaryOp::PowScalar, 2.5}, {UnaryOp::Scale, -0.37}};
  const std::vector<std::pair<UnaryOp, double>> int_unary = {
      {UnaryOp::Neg, 0}, {UnaryOp::Relu, 0}, {UnaryOp::Scale, 2.5}};
  const BinaryOp binary_ops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div,
                                 BinaryOp::Eq,  BinaryOp::Ne,  BinaryOp::Lt,  BinaryOp::Le,
                                 BinaryOp::Gt,  BinaryOp::Ge};
  const auto same_bits = [](const Tensor& got, const Tensor& want) {
    const Tensor g = got.to(Device::cpu()).contiguous(), w = want.to(Device::cpu()).contiguous();
    REQUIRE(g.shape() == w.shape());
    CHECK(std::memcmp(g.raw_data(), w.raw_data(),
                      static_cast<size_t>(g.numel()) * dtype_size(g.dtype())) == 0);
  };
  uint32_t seed = 700;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    const bool whole = dtype == DType::Int64;
    for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 9, 31, 1023, 4097}) {
      INFO(dtype_name(dtype) << ", " << n << " elements");
      // Positive values (log, sqrt, pow), whole ones for int64; equal pairs for comparisons.
      const Tensor pairs_a = random_values({n, 2}, dtype, 0.1, 4, seed++, whole).to(kGpu);
      const Tensor pairs_b = random_values({n, 2}, dtype, 1, 4, seed++, true).to(kGpu);
      const Tensor strided_a = pairs_a.slice(1, 0, 1), strided_b = pairs_b.slice(1, 0, 1);
      if (n > 1) REQUIRE_FALSE(strided_a.is_contiguous());  // one element is contiguous
      const Tensor a = strided_a.contiguous(), b = strided_b.contiguous();  // [n, 1]
      Tensor shifted_a = Tensor::empty({n + 1, 1}, dtype, kGpu);
      shifted_a.slice(0, 1, n + 1).copy_(a);
      const Tensor misaligned_a = shifted_a.slice(0, 1, n + 1);
      REQUIRE(misaligned_a.is_contiguous());
      for (const auto& [op, param] : whole ? int_unary : float_unary) {
        INFO("unary op " << static_cast<int>(op));
        const Tensor fast = gpu.unary(op, a, param);
        same_bits(fast, gpu.unary(op, strided_a, param));
        same_bits(fast, gpu.unary(op, misaligned_a, param));
      }
      for (BinaryOp op : binary_ops) {
        INFO("binary op " << static_cast<int>(op));
        const Tensor fast = gpu.binary(op, a, b);
        same_bits(fast, gpu.binary(op, strided_a, strided_b));
        same_bits(fast, gpu.binary(op, misaligned_a, b));
      }
    }
  }
}

TEST_CASE("cuda elementwise: masked_fill equals the CPU's for masks of every dtype", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  struct Case {
    std::string name;
    Shape sx, smask;
    DType mask_dtype;
    View vx;
    double value;
  };
  const View same = [](const Tensor& t) { return t; };
  const std::vector<Case> cases = {
      {"float32 mask [4, 5, 6]", {4, 5, 6}, {4, 5, 6}, DType::Float32, same, -1e9},
      {"int64 mask [5, 1]", {4, 5, 6}, {5, 1}, DType::Int64, same, 0.5},
      {"float64 mask [6]", {4, 5, 6}, {6}, DType::Float64, same, -INFINITY},
      {"transposed x [6, 5, 4], mask [6, 1, 4]", {4, 5, 6}, {6, 1, 4}, DType::Float32,
       [](const Tensor& t) { return t.transpose(0, 2); }, 3.0},
      {"x [1031], 0-d mask", {1031}, {}, DType::Int64, same, 2.0},
      {"x [0, 4]", {0, 4}, {4}, DType::Float32, same, 1.0}};
  uint32_t seed = 300;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    for (const Case& c : cases) {
      INFO(dtype_name(dtype) << " " << c.name);
      const Tensor x = c.vx(random_values(c.sx, dtype, -5, 5, seed++, dtype == DType::Int64));
      const Tensor mask = random_values(c.smask, c.mask_dtype, 0, 2, seed++, true);
      const double value = dtype == DType::Int64 ? 7.0 : c.value;
      check_close(masked_fill(x.to(kGpu), mask.to(kGpu), value), masked_fill(x, mask, value), 0);
    }
  }
  // Any nonzero counts, NaN included; -0.0 is zero.
  const Tensor x = from_vector<float>({1, 2, 3, 4, 5});
  const Tensor mask = from_vector<double>({0.0, -0.0, NAN, -2.0, 0.25});
  check_close(masked_fill(x.to(kGpu), mask.to(kGpu), -1), masked_fill(x, mask, -1), 0);
  check_close(masked_fill(x.to(kGpu), mask.to(kGpu), -1), from_vector<float>({1, 2, -1, -1, -1}),
              0);
}

TEST_CASE("cuda reduce: sum, mean and max over any axes equal the CPU's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  // Axes lists per view case (by name); {} means every axis.
  const auto axes_for = [](const ViewCase& vc) -> std::vector<std::vector<int64_t>> {
    const size_t dims = vc.view(zeros(vc.base)).shape().size();
    if (dims == 0) return {{}};
    if (dims == 1) return {{}, {0}};
    if (dims == 2) return {{}, {0}, {1}, {0, 1}};
    if (dims == 3) return {{}, {0}, {1}, {2}, {0, 2}, {1, 2}, {-1}};
    return {{}, {0}, {1}, {3}, {0, 2}, {1, 2, 3}, {0, 1, 3}, {-1}};
  };
  uint32_t seed = 500;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    const bool whole = dtype == DType::Int64;
    for (const ViewCase& vc : view_cases()) {
      const Tensor base = random_values(vc.base, dtype, -4, 4, seed++, whole);
      const Tensor x = vc.view(base), xg = vc.view(base.to(kGpu));
      bool keepdim = false;
      for (const std::vector<int64_t>& axes : axes_for(vc)) {
        keepdim = !keepdim;
        std::string axes_str;
        for (int64_t a : axes) axes_str += std::to_string(a) + " ";
        INFO(dtype_name(dtype) << " " << vc.name << " axes { " << axes_str << "} keepdim "
                               << keepdim);
        check_close(sum(xg, axes, keepdim), sum(x, axes, keepdim), whole ? 0 : 1e-6);
        // mean and max reject reductions over no elements (only [0, 4] has any).
        if (x.numel() == 0) continue;
        if (!whole) {
          check_close(mean(xg, axes, keepdim), mean(x, axes, keepdim), 1e-6);
          // As on the CPU, the one-pass mean is the sum scaled, to the bit.
          const double count = static_cast<double>(x.numel() / sum(x, axes, keepdim).numel());
          check_close(mean(xg, axes, keepdim), scale(sum(xg, axes, keepdim), 1 / count), 0);
        }
        check_close(max(xg, axes, keepdim), max(x, axes, keepdim), 0);
      }
    }
  }
  // An empty reduction sums to 0.
  check_close(sum(zeros({0, 4}, DType::Float32, kGpu), {0}), zeros({4}), 0);
  // Long rows (many elements per lane), and more outputs than the grid has warps (the grid-stride
  // loop over outputs).
  const Tensor wide = random_values({3, 100003}, DType::Float32, -1, 1, seed++);
  check_close(sum(wide.to(kGpu), {1}), sum(wide, {1}), 1e-6);
  check_close(sum(wide.to(kGpu)), sum(wide), 1e-6);
  check_close(max(wide.to(kGpu), {1}), max(wide, {1}), 0);
  const Tensor tall = random_values({600000, 3}, DType::Float32, -1, 1, seed++);
  check_close(sum(tall.to(kGpu), {1}), sum(tall, {1}), 1e-6);
  check_close(max(tall.to(kGpu), {1}), max(tall, {1}), 0);
  check_close(sum(tall.to(kGpu), {0}), sum(tall, {0}), 1e-6);
  // NaN is the max of anything; -inf and +inf are ordinary.
  const Tensor special = from_vector<float>({1, NAN, 3, -INFINITY, -INFINITY, -INFINITY, 2, 5,
                                             INFINITY, 0, NAN, NAN},
                                            {4, 3});
  for (const std::vector<int64_t>& axes : std::vector<std::vector<int64_t>>{{}, {0}, {1}}) {
    check_close(max(special.to(kGpu), axes), max(special, axes), 0);
    check_close(max(special.t().to(kGpu), axes), max(special.t(), axes), 0);
  }
  check_close(max(special.to(kGpu), {1}), from_vector<float>({NAN, -INFINITY, INFINITY, NAN}), 0);
  // Sums are deterministic: the same bits on every run.
  const Tensor again = random_values({257, 4099}, DType::Float32, -1, 1, seed++).to(kGpu);
  const auto first = sum(again, {1}).to_vector<float>();
  for (int run = 0; run < 3; ++run) CHECK(sum(again, {1}).to_vector<float>() == first);
}

TEST_CASE("cuda reduce: reduce_sum_pair gives two reduce calls' bits in one launch", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& gpu = backend_for(kGpu);
  // Every pair of axis sets of every view case, strided and broadcast views included.
  const auto axis_sets = [](int64_t dims) {
    std::vector<std::vector<int>> sets;
    for (int mask = 1; mask < (1 << dims); ++mask) {
      std::vector<int> axes;
      for (int d = 0; d < dims; ++d)
        if (mask & (1 << d)) axes.push_back(d);
      sets.push_back(axes);
    }
    return sets;
  };
  uint32_t seed = 560;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    for (const ViewCase& vc : view_cases()) {
      const Tensor base = random_values(vc.base, dtype, -4, 4, seed++, dtype == DType::Int64);
      const Tensor xg = vc.view(base.to(kGpu));
      const std::vector<std::vector<int>> sets = axis_sets(xg.dim());
      for (size_t i = 0; i < sets.size(); ++i) {
        for (size_t j = 0; j < sets.size(); ++j) {
          INFO(dtype_name(dtype) << " " << vc.name << " axis sets " << i << " and " << j);
          const auto [a, b] = gpu.reduce_sum_pair(xg, sets[i], sets[j]);
          check_close(a, gpu.reduce(ReduceOp::Sum, xg, sets[i]).to(Device::cpu()), 0);
          check_close(b, gpu.reduce(ReduceOp::Sum, xg, sets[j]).to(Device::cpu()), 0);
        }
      }
    }
  }
  // The first layer's table gradient [T, V, D] summed to W_E [V, D] and W_pos [T, D]: one
  // launch through an add's backward, the CPU's sums.
  const Tensor W_E = random_values({114, 128}, DType::Float32, -1, 1, seed++);
  const Tensor W_pos = random_values({3, 128}, DType::Float32, -1, 1, seed++);
  const Tensor weights = random_values({3, 114, 128}, DType::Float32, -1, 1, seed++);
  std::vector<Tensor> grads;
  for (Device device : {Device::cpu(), kGpu}) {
    const Tensor e = W_E.to(device).requires_grad_(), p = W_pos.to(device).requires_grad_();
    sum((e.unsqueeze(0) + p.unsqueeze(1)) * weights.to(device)).backward();
    grads.insert(grads.end(), {e.grad(), p.grad()});
  }
  check_close(grads[2], grads[0], 1e-6);
  check_close(grads[3], grads[1], 1e-6);
  // Sums over no elements are 0, as reduce gives them.
  const auto [none, rows] = gpu.reduce_sum_pair(zeros({0, 4}, DType::Float32, kGpu), {0}, {1});
  check_close(none, zeros({1, 4}), 0);
  CHECK(rows.shape() == Shape{0, 1});
}

TEST_CASE("cuda reduce: argmax gives the CPU's first maximum (and first NaN)", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 700;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    for (const ViewCase& vc : view_cases()) {
      // Whole numbers in [-3, 3): many ties, and the first of them must win.
      const Tensor base = random_values(vc.base, dtype, -3, 3, seed++, true);
      const Tensor x = vc.view(base), xg = vc.view(base.to(kGpu));
      for (int64_t axis = 0; axis < x.dim(); ++axis) {
        if (x.shape()[axis] == 0) continue;
        for (bool keepdim : {false, true}) {
          INFO(dtype_name(dtype) << " " << vc.name << " axis " << axis << " keepdim " << keepdim);
          check_close(argmax(xg, axis, keepdim), argmax(x, axis, keepdim), 0);
        }
      }
    }
  }
  // Rows longer than a warp, with the maximum tied at many places.
  const Tensor wide = random_values({5, 4099}, DType::Float32, 0, 4, seed++, true);
  check_close(argmax(wide.to(kGpu), 1), argmax(wide, 1), 0);
  check_close(argmax(wide.t().to(kGpu), 0), argmax(wide, 1), 0);
  // The first NaN wins; otherwise the first maximum, -inf and +inf included.
  const Tensor special = from_vector<double>(
      {1, NAN, 3, NAN, -INFINITY, -INFINITY, -INFINITY, -INFINITY, 2, 5, INFINITY, INFINITY, 0,
       0, NAN, 7},
      {4, 4});
  check_close(argmax(special.to(kGpu), 1), from_vector<int64_t>({1, 0, 2, 2}), 0);
  check_close(argmax(special.to(kGpu), 1), argmax(special, 1), 0);
  check_close(argmax(special.to(kGpu), 0), argmax(special, 0), 0);
  std::vector<double> late(100, 1.0);
  late[67] = NAN;
  late[90] = NAN;
  late[3] = 9.0;
  check_close(argmax(from_vector<double>(late).to(kGpu), 0), scalar(67, DType::Int64), 0);
}

TEST_CASE("cuda autograd: the gradient of sum(relu(x * y + x)) equals the CPU's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Generator gen(11);
  for (auto [sx, sy] : {std::array<Shape, 2>{Shape{4, 1, 6}, Shape{5, 6}},
                        std::array<Shape, 2>{Shape{33, 1, 129}, Shape{17, 129}}}) {
    INFO("x " << shape_str(sx) << " y " << shape_str(sy));
    const Tensor x0 = randn(sx, gen), y0 = randn(sy, gen);
    // Leaves of their own on each device (x0.to(cpu) would be x0 itself).
    const auto run = [&](Device device) {
      Tensor x = x0.to(device).detach(), y = y0.to(device).detach();
      x.requires_grad_();
      y.requires_grad_();
      const Tensor loss = sum(relu(x * y + x));
      loss.backward();
      return std::array<Tensor, 3>{loss, x.grad(), y.grad()};
    };
    const auto want = run(Device::cpu()), got = run(kGpu);
    const char* names[] = {"loss", "x.grad", "y.grad"};
    for (int i = 0; i < 3; ++i) {
      INFO(names[i]);
      REQUIRE(got[i].defined());
      check_close(got[i], want[i], 1e-6);
    }
  }
}
