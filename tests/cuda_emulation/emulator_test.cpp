// The emulated device's own promises (emulated_cuda.h), which the emulated_* tests rely on to
// find races and reads of unwritten memory: the order it runs blocks, warps and lanes in under
// each schedule (CTest runs this program under both), and the NaN it fills fresh and released
// device memory with. The kernels here race on purpose: on a GPU their results are undefined.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cuda/launch.h"
#include "tinygrok.h"

namespace {

using tg::cuda::kernel_prologue;

// Device memory for n values, filled from the host; back to the host with read().
template <typename T>
struct DeviceArray {
  T* p = nullptr;
  size_t n;
  explicit DeviceArray(size_t count, T fill = T(0)) : n(count) {
    REQUIRE(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(T)) == cudaSuccess);
    const std::vector<T> host(n, fill);
    REQUIRE(cudaMemcpy(p, host.data(), n * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  ~DeviceArray() { cudaFree(p); }
  std::vector<T> read() const {
    std::vector<T> host(n);
    REQUIRE(cudaMemcpy(host.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    return host;
  }
};

// Each block takes the next ticket: the order the blocks ran in.
__global__ void take_tickets(unsigned* counter, unsigned* ticket) {
  kernel_prologue();
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  if (threadIdx.x == 0) ticket[block] = atomicAdd(counter, 1u);
}

// Every thread writes its index to one shared variable, with no barrier: the last one to run
// wins.
__global__ void last_writer(int* out) {
  kernel_prologue();
  __shared__ int last;
  last = static_cast<int>(threadIdx.x);
  __syncthreads();
  if (threadIdx.x == 0) *out = last;
}

// Thread 0 reads a flag after one warp barrier; thread 32 (warp 1) sets it after two. Only a
// warp that runs ahead through its own barriers, before warp 0 reads, would show the flag.
__global__ void run_ahead(int* out) {
  kernel_prologue();
  __shared__ int flag;
  if (threadIdx.x == 0) flag = 0;
  __syncthreads();
  __syncwarp();
  if (threadIdx.x == 0) *out = flag;
  __syncwarp();
  if (threadIdx.x == 32) flag = 1;
}

// Warp 1 sets a flag after its first warp barrier; warp 0 reads it after its second.
__global__ void take_turns(int* out) {
  kernel_prologue();
  __shared__ int flag;
  if (threadIdx.x == 0) flag = 0;
  __syncthreads();
  __syncwarp();
  if (threadIdx.x == 32) flag = 1;
  __syncwarp();
  if (threadIdx.x == 0) *out = flag;
}

}  // namespace

TEST_CASE("emulated blocks run first to last, or last to first when reversed") {
  DeviceArray<unsigned> counter(1), ticket(12);
  tg::cuda::launch(take_tickets, dim3(3, 2, 2), dim3(32), nullptr, counter.p, ticket.p);
  const std::vector<unsigned> got = ticket.read();
  for (unsigned b = 0; b < 12; ++b)
    CHECK(got[b] == (tg_emulation::reverse_schedule() ? 11 - b : b));
}

TEST_CASE("emulated threads between barriers run in index order, or reversed") {
  DeviceArray<int> out(1, -1);
  tg::cuda::launch(last_writer, dim3(1), dim3(70), nullptr, out.p);
  CHECK(out.read()[0] == (tg_emulation::reverse_schedule() ? 0 : 69));
}

TEST_CASE("emulated warps: forward, each runs ahead through its own barriers; reversed, "
          "they take turns at every warp barrier") {
  DeviceArray<int> out(1, -1);
  // Warp 0 reads the flag after its first warp barrier, warp 1 sets it after its second.
  // Forward, warp 0 runs to its end first; reversed, warp 1 reaches only its second barrier
  // before warp 0 passes its first: 0 both ways (running ahead, warp 1 would have set it).
  tg::cuda::launch(run_ahead, dim3(1), dim3(64), nullptr, out.p);
  CHECK(out.read()[0] == 0);
  // Warp 1 sets the flag after its first warp barrier, warp 0 reads it after its second:
  // reversed, warp 1 moves first at each turn and has set it; forward, warp 0 read it first.
  tg::cuda::launch(take_turns, dim3(1), dim3(64), nullptr, out.p);
  CHECK(out.read()[0] == (tg_emulation::reverse_schedule() ? 1 : 0));
}

TEST_CASE("an emulated launch outside a GPU's limits fails, as on the GPU, and runs nothing") {
  DeviceArray<int> out(1, -1);
  const std::pair<dim3, dim3> too_large[] = {
      {dim3(1), dim3(1025)}, {dim3(1), dim3(1, 1, 65)}, {dim3(1, 65536), dim3(32)},
      {dim3(0), dim3(32)}};
  for (const auto& [grid, block] : too_large) {
    CHECK_THROWS_WITH(tg::cuda::launch(last_writer, grid, block, nullptr, out.p),
                      Catch::Matchers::Contains("invalid configuration argument"));
    CHECK(out.read()[0] == -1);
  }
  tg::cuda::launch(last_writer, dim3(1), dim3(1024), nullptr, out.p);  // the largest block
  CHECK(out.read()[0] == (tg_emulation::reverse_schedule() ? 0 : 1023));
  tg::cuda::launch(last_writer, dim3(1, 65535), dim3(1), nullptr, out.p);  // and grid.y
}

TEST_CASE("emulated device memory starts as NaN, fresh or released to the cache") {
  SECTION("cudaMalloc") {
    float* p = nullptr;
    REQUIRE(cudaMalloc(reinterpret_cast<void**>(&p), 1000 * sizeof(float)) == cudaSuccess);
    std::vector<float> host(1000, 0.0f);
    REQUIRE(cudaMemcpy(host.data(), p, host.size() * sizeof(float), cudaMemcpyDeviceToHost) ==
            cudaSuccess);
    cudaFree(p);
    for (float v : host) REQUIRE(std::isnan(v));
  }
  SECTION("a block the caching allocator hands out again") {
    const void* first = nullptr;
    {
      const tg::Tensor ones = tg::full({1000}, 1.0, tg::DType::Float32, tg::Device::cuda(0));
      first = ones.raw_data();
    }
    const tg::Tensor again = tg::Tensor::empty({1000}, tg::DType::Float32, tg::Device::cuda(0));
    REQUIRE(again.raw_data() == first);  // the same block, reused
    for (float v : again.to(tg::Device::cpu()).to_vector<float>()) REQUIRE(std::isnan(v));
  }
}

// out[0] = x * x + r with the product rounded on its own (kernels/cuda/rounded.cuh), out[1] the
// same with both steps rounded; float and double.
template <typename T>
__global__ void rounded_square_plus(const T* in, T* out) {
  kernel_prologue();
  const T x = in[0], r = in[1];
  if constexpr (std::is_same_v<T, float>) {
    out[0] = __fmul_rn(x, x) + r;
    out[1] = __fadd_rn(__fmul_rn(x, x), r);
  } else {
    out[0] = __dmul_rn(x, x) + r;
    out[1] = __dadd_rn(__dmul_rn(x, x), r);
  }
}

// x = 1 + 2^-(p/2 + 1) squares to 1 + 2^-(p/2) + 2^-(p + 2): rounded, the last term is gone and
// adding r = -(1 + 2^-(p/2)) gives 0; fused into one FMA it survives. GCC contracts a plain
// x * x + r here (-march=native), so this fails if the emulated intrinsics let it.
TEMPLATE_TEST_CASE("emulated __fmul_rn and its kin round on their own, as nvcc's", "", float,
                   double) {
  constexpr int half = std::numeric_limits<TestType>::digits / 2;  // 12 for float, 26 for double
  const TestType x = 1 + std::ldexp(TestType(1), -(half + 1));
  const TestType r = -(1 + std::ldexp(TestType(1), -half));
  REQUIRE(std::fma(x, x, r) != 0);  // the case tells one rounding from two
  DeviceArray<TestType> in(2), out(2);
  const std::vector<TestType> values{x, r};
  REQUIRE(cudaMemcpy(in.p, values.data(), 2 * sizeof(TestType), cudaMemcpyHostToDevice) ==
          cudaSuccess);
  tg::cuda::launch(rounded_square_plus<TestType>, dim3(1), dim3(1), nullptr, in.p, out.p);
  const std::vector<TestType> got = out.read();
  INFO(std::hexfloat << "product rounded, then + r: " << got[0] << "; both rounded: " << got[1]);
  CHECK(got[0] == 0);
  CHECK(got[1] == 0);
}
