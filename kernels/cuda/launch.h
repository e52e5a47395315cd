// Launch geometry for the elementwise-style kernels: a grid-stride loop over n elements.
#pragma once

#include <algorithm>
#include <cstdint>

namespace tg::cuda {

constexpr int kBlockThreads = 256;

// Enough blocks to cover n elements once, capped: a grid-stride loop covers the rest, and a
// grid far larger than the GPU can hold at once buys nothing.
inline unsigned grid_for(int64_t n, int threads = kBlockThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, int64_t{1} << 16));
}

}  // namespace tg::cuda

// Visits this thread's elements i of [0, n), in 64 bits (tensors may exceed 2^31 elements).
#define TG_GRID_STRIDE_LOOP(i, n)                                                           \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);    \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
