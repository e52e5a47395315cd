// The blocks that the CPU's L2 norms are summed in (optim/clip.cpp's norms, kernels/cpu/adam.cpp's
// norms taken during the update): the block size, and one block's sum of squares in double.
#pragma once

#include <cstdint>

#include "kernels/cpu/loops.h"  // TG_ONE_COPY

namespace tg::cpu {

// Elements per partial sum. Blocks are fixed, and their partial sums are added in order, so a
// norm is the same for any number of threads. A multiple of every SIMD width (adam.cpp updates
// whole vectors of a block), small enough that a block is still in L1/L2 when adam.cpp reads it
// again after its update.
constexpr int64_t kNormBlock = 8192;

// sum of x[i]^2 over [0, n), in double. Not inlined, so that every block, whichever branch of
// parallel_for runs it, goes through the same machine code and gives the same bits.
template <typename T>
TG_ONE_COPY double block_sum_of_squares(const T* x, int64_t n) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

}  // namespace tg::cpu
