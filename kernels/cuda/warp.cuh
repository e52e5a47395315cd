// Warp-wide reductions shared by the one-warp-per-row kernels (softmax, cross-entropy, layer
// norm, attention). An xor butterfly pairs lanes l and l ^ m, which combine the same two values
// in a commutative way, so every lane ends with the same bits, and the fixed tree makes the
// result independent of timing. Call with the whole warp converged.
#pragma once

namespace tg::cuda {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// The larger of two values, NaN if either is (both orders agree, so every lane of the butterfly
// sees the line's NaN, and the outputs are NaN, as on the CPU).
template <typename T>
__device__ inline T max_of(T a, T b) {
  if (a != a) return a;
  return (b > a || b != b) ? b : a;
}

template <typename T>
__device__ inline T warp_max(T v) {
  for (int step = kWarp / 2; step > 0; step /= 2)
    v = max_of(v, __shfl_xor_sync(kFullMask, v, step));
  return v;
}

template <typename T>
__device__ inline T warp_sum(T v) {
  for (int step = kWarp / 2; step > 0; step /= 2) v += __shfl_xor_sync(kFullMask, v, step);
  return v;
}

}  // namespace tg::cuda
