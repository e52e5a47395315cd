// Launch geometry and the one way kernels are launched: launch(kernel, grid, block, stream, ...)
// instead of kernel<<<...>>>(...). Under host emulation (TG_CUDA_HOST_EMULATION, see
// tests/cuda_emulation/) the same call runs the kernel on host threads, or records it while the
// stream captures a graph, so every kernel of this backend can be checked on a machine without a
// GPU.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "kernels/cuda/check.h"
#include "kernels/cuda/dependent_launch.h"

namespace tg::cuda {

constexpr int kBlockThreads = 256;

// Enough blocks to cover n elements once, capped: a grid-stride loop covers the rest, and a
// grid far larger than the GPU can hold at once buys nothing.
inline unsigned grid_for(int64_t n, int threads = kBlockThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, int64_t{1} << 16));
}

// kernel<<<grid, block, 0, stream>>>(args...) on the current device, allowed to overlap the
// kernel before it where dependent launches are on (dependent_launch.h); the caller checks the
// launch. Kernels begin with kernel_prologue(), use static __shared__ arrays only (no dynamic
// shared memory), and call warp shuffles with the whole warp converged.
template <typename... Params, typename... Args>
void enqueue_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                    Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "launch: wrong number of kernel arguments");
#ifdef TG_CUDA_HOST_EMULATION
  emulate_launch(kernel, grid, block, stream, static_cast<Params>(args)...);
#else
  int device = 0;
  if (cudaGetDevice(&device) == cudaSuccess && dependent_launches(device)) {
    cudaLaunchAttribute overlap{};
    overlap.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    overlap.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.stream = stream;
    config.attrs = &overlap;
    config.numAttrs = 1;
    // A failure is also the last error, as after <<<>>>: launch() checks it.
    cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
  } else {
    kernel<<<grid, block, 0, stream>>>(static_cast<Params>(args)...);
  }
#endif
}

// enqueue_kernel, then a check that the launch was accepted.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
            Args&&... args) {
  enqueue_kernel(kernel, grid, block, stream, std::forward<Args>(args)...);
  TG_CUDA_CHECK_LAUNCH();
}

}  // namespace tg::cuda

// Visits this thread's elements i of [0, n), in 64 bits (tensors may exceed 2^31 elements).
#define TG_GRID_STRIDE_LOOP(i, n)                                                           \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);    \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
