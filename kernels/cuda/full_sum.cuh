// A sum of n values to one number inside a kernel, with the bits CudaBackend::reduce gives that
// sum (kernels/cuda/reduce.cu), so that a fused kernel's total equals its composition's: the
// cross-entropy kernel's last block adds the row losses the other blocks wrote
// (cross_entropy.cu). reduce's plan for (1 output, n elements) fixes the order, and one block
// of kBlockThreads replays it:
//  - n < 256, a warp: lane l adds l, l + 32, ..., then the shuffle tree into lane 0;
//  - else a block per part (one part below 4,096 values): thread t adds the part's t, t + 256,
//    ..., each warp's tree, then warp 0's tree over the 8 warps' results; parts in turn;
//  - more than one part: warp 0 adds part results l, l + 32, ... per lane, then the tree.
// Sums are in double from values of T, as reduce's. Reads go past L1 and several at a time
// (ordered_sum_from_l2): the values come from other blocks, and the caller fences first.
#pragma once

#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ordered_sum.cuh"
#include "kernels/cuda/reduce_plan.h"
#include "kernels/cuda/warp.cuh"

namespace tg::cuda {

// The shuffle tree of reduce's warp_combine: lane l adds lane l + step's (later elements), for
// step 16, 8, 4, 2, 1; lane 0 ends with the warp's sum.
__device__ inline double warp_tree_sum(double s) {
  for (int step = kWarp / 2; step > 0; step /= 2) s += __shfl_down_sync(kFullMask, s, step);
  return s;
}

// Elements first, first + stride, ... below end of x, added in order.
template <typename T>
__device__ inline double strided_sum(const T* x, int64_t first, int64_t end, int64_t stride) {
  const int64_t count = first < end ? (end - first + stride - 1) / stride : 0;
  return ordered_sum_from_l2<double>(x + (count > 0 ? first : 0), count, stride);
}

// The sum of x[0, n) as reduce computes it, in thread 0 (other threads: partial values). Every
// thread of the block (blockDim.x == kBlockThreads) must call it.
template <typename T>
__device__ double block_sum_as_reduce(const T* x, int64_t n) {
  __shared__ double warp_results[kBlockThreads / kWarp];
  __shared__ double part_results[kSplitBlocks];
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const ReducePlan plan = plan_for(1, n);
  if (!plan.by_block) return warp == 0 ? warp_tree_sum(strided_sum(x, lane, n, kWarp)) : 0.0;
  const int64_t chunk = (n + plan.parts - 1) / plan.parts;
  for (int64_t part = 0; part < plan.parts; ++part) {
    const int64_t begin = part * chunk, end = begin + chunk < n ? begin + chunk : n;
    const double s = warp_tree_sum(strided_sum(x, begin + threadIdx.x, end, kBlockThreads));
    if (lane == 0) warp_results[warp] = s;
    __syncthreads();
    if (warp == 0) {
      const double w = warp_tree_sum(lane < kBlockThreads / kWarp ? warp_results[lane] : 0.0);
      if (lane == 0) part_results[part] = w;
    }
    __syncthreads();  // warp_results read, part_results written
  }
  if (plan.parts == 1 || warp != 0) return part_results[0];
  double s = 0;
  for (int64_t part = lane; part < plan.parts; part += kWarp) s += part_results[part];
  return warp_tree_sum(s);
}

}  // namespace tg::cuda
