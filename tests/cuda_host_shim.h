// Host emulation of the little CUDA that kernels/cuda/sgemm uses, so the kernels' index math can
// be checked on a machine without a GPU (tests/sgemm_host_emulation.cpp).
//
// Every CUDA thread of a block runs on its own host thread; __shared__ variables become function
// statics (shared by the block's threads; blocks run one after another); __syncthreads() is a
// std::barrier over the block. Compile a .cu file as C++ with -include tests/cuda_host_shim.h
// -DTG_SGEMM_HOST_EMULATION. It emulates semantics, not speed, and not warps: code that relies on
// warp-synchronous execution or on shared memory starting out as garbage is not checked by it.
#pragma once

#include <barrier>
#include <cstddef>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;
inline thread_local std::barrier<>* tg_emulated_block_barrier = nullptr;

inline void __syncthreads() { tg_emulated_block_barrier->arrive_and_wait(); }

struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

enum cudaError_t { cudaSuccess = 0 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorName(cudaError_t) { return "cudaSuccess"; }
inline const char* cudaGetErrorString(cudaError_t) { return "no error"; }

// kernel<<<grid, block>>>(arg): one host thread per CUDA thread of a block, each running the
// kernel for every block in turn, with a barrier at the end of each block (so no thread starts
// the next block, and reuses the block's "shared" statics, before all have finished this one).
template <typename Kernel, typename Arg>
void emulate_launch(Kernel kernel, dim3 grid, dim3 block, Arg arg) {
  const std::ptrdiff_t threads = static_cast<std::ptrdiff_t>(block.x) * block.y * block.z;
  std::barrier<> barrier(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned tz = 0; tz < block.z; ++tz)
    for (unsigned ty = 0; ty < block.y; ++ty)
      for (unsigned tx = 0; tx < block.x; ++tx)
        pool.emplace_back([=, &barrier] {
          threadIdx = dim3(tx, ty, tz);
          blockDim = block;
          gridDim = grid;
          tg_emulated_block_barrier = &barrier;
          for (unsigned bz = 0; bz < grid.z; ++bz)
            for (unsigned by = 0; by < grid.y; ++by)
              for (unsigned bx = 0; bx < grid.x; ++bx) {
                blockIdx = dim3(bx, by, bz);
                kernel(arg);
                barrier.arrive_and_wait();
              }
        });
  for (auto& t : pool) t.join();
}
