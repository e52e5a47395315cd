// CUDA runtime tests: host <-> device round trips of every dtype over awkward shapes and
// non-contiguous views, the strided copy kernel with dtype conversion, fill, fill_random equal to
// the CPU's for the same (seed, counter), the caching allocator's reuse, error messages, and
// cuBLAS running on the backend's stream. Every case skips visibly without a GPU.
#include <catch2/catch.hpp>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_caching_allocator.h"
#include "kernels/cuda/stream.h"
#include "test_cuda_support.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
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
  REQUIRE(std::memcmp(g.data(), w.data(), g.size() * sizeof(double)) == 0);
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
  // Only the destination's own elements are written.
  Tensor dst = full({6, 8}, -1, DType::Float32, kGpu);
  dst.slice(1, 1, 8, 3).copy_(ones({6, 3}).to(kGpu));
  const auto v = dst.to_vector<float>();
  for (int64_t i = 0; i < 48; ++i) CHECK(v[i] == ((i % 8) % 3 == 1 ? 1.0f : -1.0f));
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

TEST_CASE("cuda runtime: fill_random gives the CPU's numbers for a (seed, counter)", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  struct Kind {
    RandomKind kind;
    double a, b;
    const char* name;
  };
  const Kind kinds[] = {{RandomKind::Uniform, -1.5, 2.0, "uniform"},
                        {RandomKind::Uniform, 1.0, 2.0, "uniform [1, 2)"},
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
              CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(double)) == 0);
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

  // A primitive without a kernel yet says so (update this as kernels land); host transfers want
  // contiguous tensors.
  const Tensor x = ones({2, 3}, DType::Float32, kGpu);
  REQUIRE_TG_ERROR(x + x, Contains("cuda: binary is not implemented yet"));
  std::vector<float> host(6);
  REQUIRE_TG_ERROR(backend_for(kGpu).copy_to_host(x.t(), host.data()),
                   Contains("copy_to_host: source must be contiguous"));
  REQUIRE_TG_ERROR(backend_for(kGpu).fill_random(zeros({3}, DType::Int64, kGpu),
                                                 RandomKind::Uniform, 0, 0, 0, 1),
                   Contains("fill_random: not defined for int64"));
}

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
