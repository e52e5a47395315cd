// SGEMM versions on the GPU: every version of the registry, and v9's kernel at each of its other
// block tilings (mma_tilings.h), on awkward shapes (edges that are no multiple of any tile, each
// transpose combination, tight and padded rows, batches with B broadcast, the model's forward
// and backward shapes), with C poisoned with NaN before each run, against a float64 host
// reference and against cuBLAS SGEMM with TF32 off; both within 1e-5 relative (5e-3 for v8 and
// v10, on TF32 tensor cores), every element written and nothing outside C touched. Also the
// registry's shape, best_sgemm()'s choice and argument checks, which need no GPU.
// Without a usable CUDA device the GPU cases warn "skipped: ...", pass, and are counted
// (tests/test_cuda_support.h).
#include <catch2/catch.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/sgemm/mma_tilings.h"
#include "kernels/cuda/sgemm/sgemm.h"
#include "kernels/cuda/stream.h"
#include "sgemm_test_util.h"
#include "test_cuda_support.h"

using namespace tg::cuda;
using namespace tg::testing;

namespace {

constexpr double kTolerance = 1e-5;  // float32 arithmetic against float64, ||C - ref|| / ||ref||
constexpr double kTf32Tolerance = 5e-3;  // the same with inputs rounded to TF32 (v8)

void require_cuda(cudaError_t e, const char* call) {
  INFO(call << ": " << cudaGetErrorName(e) << ": " << cudaGetErrorString(e));
  REQUIRE(e == cudaSuccess);
}
void require_cublas(cublasStatus_t s, const char* call) {
  INFO(call << ": cuBLAS status " << static_cast<int>(s));
  REQUIRE(s == CUBLAS_STATUS_SUCCESS);
}
#define CUDA_REQUIRE(call) require_cuda((call), #call)
#define CUBLAS_REQUIRE(call) require_cublas((call), #call)

// A device buffer of floats, freed at scope exit.
struct DeviceFloats {
  float* ptr = nullptr;
  size_t size = 0;
  explicit DeviceFloats(size_t n) : size(n) {
    const size_t bytes = std::max<size_t>(n, 1) * sizeof(float);
    CUDA_REQUIRE(cudaMalloc(reinterpret_cast<void**>(&ptr), bytes));
  }
  explicit DeviceFloats(const std::vector<float>& host) : DeviceFloats(host.size()) {
    CUDA_REQUIRE(cudaMemcpy(ptr, host.data(), size * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~DeviceFloats() { cudaFree(ptr); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;

  void poison() { CUDA_REQUIRE(cudaMemset(ptr, 0xFF, size * sizeof(float))); }  // all NaN
  std::vector<float> download() const {
    std::vector<float> host(size);
    CUDA_REQUIRE(cudaMemcpy(host.data(), ptr, size * sizeof(float), cudaMemcpyDeviceToHost));
    return host;
  }
};

// A cuBLAS handle doing true float32 arithmetic (no TF32 tensor-core rounding).
struct Cublas {
  cublasHandle_t handle = nullptr;
  Cublas() {
    CUBLAS_REQUIRE(cublasCreate(&handle));
    CUBLAS_REQUIRE(cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH));
  }
  ~Cublas() { cublasDestroy(handle); }
  Cublas(const Cublas&) = delete;
  Cublas& operator=(const Cublas&) = delete;

  // Row-major C = op(A) @ op(B) is column-major C^T = op(B)^T @ op(A)^T: the same buffers with the
  // operands swapped; a row-major operand used as is reads as its transpose, hence OP_N.
  void gemm(const GemmArgs& g) const {
    const float one = 1.0f, zero = 0.0f;
    for (int z = 0; z < g.batch; ++z)
      CUBLAS_REQUIRE(cublasSgemm(handle, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, g.N, g.M, g.K, &one,
                                 g.B + z * g.stride_b, static_cast<int>(g.ldb),
                                 g.A + z * g.stride_a, static_cast<int>(g.lda), &zero,
                                 g.C + z * g.stride_c, static_cast<int>(g.ldc)));
  }
};

std::string version_name(const SgemmVersion& v) { return tg::cat("v", v.number, "_", v.name); }

// Fake device addresses for the checks that never launch: 256-byte aligned, or misaligned by one
// float.
const float* fake_pointer(uintptr_t offset_floats) {
  return reinterpret_cast<const float*>(uintptr_t{1} << 20) + offset_floats;
}
GemmArgs fake_args(int M, int N, int K, int64_t ld_extra = 0) {
  GemmArgs g;
  g.M = M, g.N = N, g.K = K;
  g.A = fake_pointer(0), g.lda = K + ld_extra;
  g.B = fake_pointer(0), g.ldb = N + ld_extra;
  g.C = const_cast<float*>(fake_pointer(0)), g.ldc = N + ld_extra;
  return g;
}

}  // namespace

TEST_CASE("sgemm registry: versions numbered 1, 2, ... in order, each described") {
  const auto& versions = sgemm_versions();
  REQUIRE(versions.size() >= 7);
  for (size_t i = 0; i < versions.size(); ++i) {
    const SgemmVersion& v = versions[i];
    INFO(version_name(v));
    CHECK(v.number == static_cast<int>(i) + 1);
    CHECK(std::string(v.name).size() > 0);
    CHECK(std::string(v.what_changed).size() > 0);
    CHECK(v.run != nullptr);
    CHECK(v.supports != nullptr);
  }
}

TEST_CASE("best_sgemm: the warptiled version at any alignment, v5 for masks on unaligned rows") {
  CHECK(best_sgemm(fake_args(3830, 512, 128)).number == 7);
  CHECK(best_sgemm(fake_args(129, 77, 33, 3)).number == 7);  // odd sizes, padded aligned rows
  CHECK(best_sgemm(fake_args(129, 77, 33)).number == 7);     // K = 33: A's rows misaligned
  CHECK(best_sgemm(fake_args(1, 1, 1)).number == 7);
  GemmArgs misaligned = fake_args(64, 64, 64);
  misaligned.B = fake_pointer(1);
  CHECK(best_sgemm(misaligned).number == 7);
  GemmArgs odd_stride = fake_args(64, 64, 64);
  odd_stride.batch = 2, odd_stride.stride_a = 64 * 64 + 1, odd_stride.stride_c = 64 * 64;
  CHECK(best_sgemm(odd_stride).number == 7);
  GemmArgs masked = fake_args(64, 64, 64);
  masked.mask_a = fake_pointer(1);  // a mask on 16-byte rows must be 16-byte aligned too
  CHECK(best_sgemm(masked).number == 5);
  masked.mask_a = fake_pointer(4);
  CHECK(best_sgemm(masked).number == 7);
  for (const SgemmVersion& v : sgemm_versions())  // tensor cores on TF32 inputs
    CHECK(v.tf32 == (v.number == 8 || v.number == 10));
}

TEST_CASE("best_sgemm: versions not yet measured only when forced (TG_CUDA_SGEMM)") {
  REQUIRE(forced_sgemm() == 0);  // the test runs without TG_CUDA_SGEMM
  for (const SgemmVersion& v : sgemm_versions())
    if (!v.measured) {
      INFO(version_name(v));
      CHECK(best_sgemm(fake_args(3830, 512, 128)).number != v.number);
      set_allow_tf32(true);
      CHECK(best_sgemm(fake_args(3830, 512, 128)).number != v.number);
      set_allow_tf32(false);
      set_forced_sgemm(v.number);
      CHECK(best_sgemm(fake_args(3830, 512, 128)).number == v.number);
      set_forced_sgemm(0);
    }
  set_forced_sgemm(6);  // v6 takes only 16-byte rows: elsewhere best_sgemm's own choice
  CHECK(best_sgemm(fake_args(64, 64, 64)).number == 6);
  CHECK(best_sgemm(fake_args(129, 77, 33)).number == 7);
  set_forced_sgemm(0);
  CHECK(best_sgemm(fake_args(64, 64, 64)).number == 7);
  const int last = static_cast<int>(sgemm_versions().size());
  REQUIRE_THROWS_WITH(set_forced_sgemm(last + 1),
                      Catch::Contains("is no SGEMM version (1 to " + std::to_string(last)));
  REQUIRE_THROWS_WITH(set_forced_sgemm(-1), Catch::Contains("-1 is no SGEMM version"));
}

TEST_CASE("check_gemm_args rejects short leading dimensions, negative sizes, overlapping C") {
  CHECK_NOTHROW(check_gemm_args(fake_args(5, 6, 7), "test"));
  GemmArgs g = fake_args(5, 6, 7);
  g.lda = 6;  // A is [5, 7]
  CHECK_THROWS_AS(check_gemm_args(g, "test"), tg::Error);
  g = fake_args(5, 6, 7);
  g.trans_a = true;  // A stored [7, 5]: lda 7 is fine
  CHECK_NOTHROW(check_gemm_args(g, "test"));
  g.trans_b = true, g.ldb = 6;  // B stored [6, 7]: ldb must be >= 7
  CHECK_THROWS_AS(check_gemm_args(g, "test"), tg::Error);
  g = fake_args(5, 6, 7);
  g.ldc = 5;
  CHECK_THROWS_AS(check_gemm_args(g, "test"), tg::Error);
  g = fake_args(5, 6, 7);
  g.batch = 2, g.stride_c = 5 * 6 - 1;
  CHECK_THROWS_AS(check_gemm_args(g, "test"), tg::Error);
  g = fake_args(5, 6, 7);
  g.batch = 3, g.stride_c = 6, g.ldc = 18;  // interleaved rows: [5, 3, 6]
  CHECK_NOTHROW(check_gemm_args(g, "test"));
  g.ldc = 17;  // the last matrix's rows run into the next row of the first
  CHECK_THROWS_AS(check_gemm_args(g, "test"), tg::Error);
  g.ldc = 18, g.stride_c = 5;  // each row overlaps the next matrix's
  CHECK_THROWS_AS(check_gemm_args(g, "test"), tg::Error);
  g = fake_args(5, 6, 7);
  g.K = -1;
  CHECK_THROWS_AS(check_gemm_args(g, "test"), tg::Error);
}

TEST_CASE("every sgemm version matches float64 and cuBLAS (TF32 off) on awkward shapes") {
  TG_REQUIRE_CUDA_DEVICE();
  const Cublas cublas;
  std::vector<SgemmVersion> versions = sgemm_versions();
  versions.insert(versions.end(), mma_tilings().begin(), mma_tilings().end());
  std::map<std::string, int> runs;  // per version and tiling
  uint64_t seed = 1000;
  for (const GemmCase& c : sgemm_cases(/*large=*/true)) {
    INFO("case " << c.name());
    const GemmHost h = make_gemm_host(c, seed++);
    const DeviceFloats a(h.A), b(h.B);
    DeviceFloats out(h.c_size);

    // cuBLAS first, against float64: this also checks the test's own layout arithmetic.
    out.poison();
    cublas.gemm(h.args(a.ptr, b.ptr, out.ptr));
    CUDA_REQUIRE(cudaDeviceSynchronize());
    const std::vector<float> blas_out = out.download();
    const GemmCheck blas = check_gemm(h, blas_out, h.reference);
    CHECK(blas.rel_error < kTolerance);
    // check_gemm reads its reference as dense [batch, M, N], not in C's padded layout.
    const std::vector<float> reference_blas = dense_c(h, blas_out);

    int supported = 0;
    for (const SgemmVersion& v : versions) {
      const GemmArgs args = h.args(a.ptr, b.ptr, out.ptr);
      if (!v.supports(args)) continue;
      ++supported;
      ++runs[version_name(v)];
      INFO(version_name(v));
      out.poison();
      v.run(args, nullptr);
      CUDA_REQUIRE(cudaDeviceSynchronize());
      const std::vector<float> got = out.download();
      const GemmCheck vs_double = check_gemm(h, got, h.reference);
      const GemmCheck vs_blas = check_gemm(h, got, reference_blas);
      CHECK(vs_double.unwritten == 0);
      CHECK(vs_double.non_finite == 0);
      CHECK(vs_double.written_gaps == 0);
      // TF32 rounds each input to 10 mantissa bits (up to 2^-11 relative).
      const double tolerance = v.tf32 ? kTf32Tolerance : kTolerance;
      CHECK(vs_double.rel_error < tolerance);
      CHECK(vs_blas.rel_error < tolerance);
    }
    CHECK(supported >= 6);  // v1..v5 and v7 take everything; v6 only aligned rows
  }
  for (const SgemmVersion& v : versions) {
    INFO(version_name(v));
    CHECK(runs[version_name(v)] > 0);
  }
}

TEST_CASE("sgemm() checks its arguments and runs the best version") {
  TG_REQUIRE_CUDA_DEVICE();
  const GemmHost h = make_gemm_host({300, 200, 100, true, false, 2, true, true}, 7);
  const DeviceFloats a(h.A), b(h.B);
  DeviceFloats out(h.c_size);
  out.poison();
  sgemm(h.args(a.ptr, b.ptr, out.ptr), nullptr);
  CUDA_REQUIRE(cudaDeviceSynchronize());
  const GemmCheck r = check_gemm(h, out.download(), h.reference);
  CHECK(r.unwritten == 0);
  CHECK(r.rel_error < kTolerance);
  GemmArgs bad = h.args(a.ptr, b.ptr, out.ptr);
  bad.ldc = bad.N - 1;
  CHECK_THROWS_AS(sgemm(bad, nullptr), tg::Error);
}

// The nanda step's long-K products, which sgemm() splits into K slices (split_k.cu): the weight
// gradients x^T @ dy (K = 3830, the batch), the MLP's second layer (K = 512, 30 row tiles) and
// the attention's per-head weight gradients (4 matrices, K = 342 table rows).
// sgemm_host_emulation checks the same on small shapes, with the epilogue and masks.
TEST_CASE("sgemm() splits long K on few tiles and still matches float64") {
  TG_REQUIRE_CUDA_DEVICE();
  uint64_t seed = 9000;
  for (const GemmCase& c : {GemmCase{128, 512, 3830, true, false}, GemmCase{512, 128, 3830, true},
                            GemmCase{128, 113, 3830, true}, GemmCase{3830, 128, 512},
                            GemmCase{32, 128, 342, true, false, 4}}) {
    INFO("case " << c.name());
    const GemmHost h = make_gemm_host(c, seed++);
    const DeviceFloats a(h.A), b(h.B);
    DeviceFloats out(h.c_size);
    const GemmArgs args = h.args(a.ptr, b.ptr, out.ptr);
    CHECK(split_k_slice(args) > 0);
    out.poison();
    // The backend's stream, as sgemm.h asks: the split's workspace is reused in its order.
    sgemm(args, current_stream(0));
    CUDA_REQUIRE(cudaDeviceSynchronize());
    const std::vector<float> first = out.download();
    const GemmCheck r = check_gemm(h, first, h.reference);
    CHECK(r.unwritten == 0);
    CHECK(r.written_gaps == 0);
    CHECK(r.rel_error < kTolerance);
    sgemm(args, current_stream(0));
    CUDA_REQUIRE(cudaDeviceSynchronize());
    CHECK(out.download() == first);  // the same bits again
  }
}

TEST_CASE("a failed launch throws tg::Error naming the kernel and the CUDA error") {
  TG_REQUIRE_CUDA_DEVICE();
  // v5 puts M / 128 blocks on grid y, whose limit is 65535: one row more cannot launch (its
  // supports() says so; run() is called anyway). No memory is touched. The runtime calls that
  // an invalid configuration or an invalid argument: on the H200 (driver 580, CUDA 13) one run
  // said the first and the next the second, with or without dependent launches.
  DeviceFloats buffer(16);
  GemmArgs g;
  g.M = 65535 * 128 + 1, g.N = 4, g.K = 4;
  g.A = buffer.ptr, g.lda = 4, g.B = buffer.ptr, g.ldb = 4, g.C = buffer.ptr, g.ldc = 4;
  const SgemmVersion& v5 = sgemm_versions().at(4);
  REQUIRE(v5.number == 5);
  CHECK_FALSE(v5.supports(g));
  CHECK_THROWS_WITH(v5.run(g, nullptr), Catch::Contains("v5_blocktiling_2d") &&
                                            (Catch::Contains("invalid configuration") ||
                                             Catch::Contains("invalid argument")));
  CUDA_REQUIRE(cudaDeviceSynchronize());  // the device is still fine afterwards
}
