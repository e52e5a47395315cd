// The in-order sum a "last block to finish" computes over values other blocks wrote: the bias
// gradient's chunk partials (linear_epilogue.cu), cross-entropy's row losses (cross_entropy.cu).
// The order of the additions fixes the bits, so it stays serial; the loads need not be. Read
// one at a time, each addition waited on its own trip to L2 (a volatile read per term: 60 terms
// per column for the bias gradient of a 3,830-row batch); here kAhead loads are in flight before
// the first of their additions. __ldcg reads past this SM's L1, which holds no copy of another
// block's writes, as the volatile reads did; the caller fences before it reads.
#pragma once

#include <cstdint>

namespace tg::cuda {

// base[0] + base[stride] + ... + base[(count - 1) * stride], added left to right into an Acc.
template <typename Acc, typename T>
__device__ inline Acc ordered_sum_from_l2(const T* base, int64_t count, int64_t stride) {
  constexpr int kAhead = 8;
  Acc acc = 0;
  int64_t k = 0;
  for (; k + kAhead <= count; k += kAhead) {
    T v[kAhead];
#pragma unroll
    for (int u = 0; u < kAhead; ++u) v[u] = __ldcg(base + (k + u) * stride);
#pragma unroll
    for (int u = 0; u < kAhead; ++u) acc += static_cast<Acc>(v[u]);
  }
  for (; k < count; ++k) acc += static_cast<Acc>(__ldcg(base + k * stride));
  return acc;
}

}  // namespace tg::cuda
