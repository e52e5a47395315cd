// SGEMM v3, shared-memory tiling: the block stages 32 x 32 tiles of A and B in shared memory and
// every thread reads its operands from there.
//
// Per step along K, the 1024 threads of a block copy one 32 x 32 tile of A and one of B into
// shared memory (one element each, coalesced in the operand's stored order, so transposed
// operands load as fast as plain ones), wait at a barrier, and each accumulates 32 products for
// its element of C from shared memory. Each global element is now read once per block instead of
// once per thread: 32x less global traffic. Edge tiles are zero-filled, so any M, N, K works.
// The cost moves to shared memory: two shared loads per multiply-add. v4 attacks that ratio.
#include "kernels/cuda/sgemm/common.cuh"
#include "kernels/cuda/sgemm/versions.h"

namespace tg::cuda {
namespace {

using namespace sgemm_detail;

constexpr int kTile = 32;
constexpr int kThreads = kTile * kTile;

template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads) smem_tiling_kernel(GemmArgs p) {
  kernel_prologue();
  const int K = entry_k(p);  // this entry's K: its slice's, under split-K
  __shared__ float As[kTile * kTile];  // As[m][k] of the current tile
  __shared__ float Bs[kTile * kTile];  // Bs[k][n]
  const float *A, *B;
  float* C;
  select_batch(p, A, B, C);
  const int m0 = blockIdx.y * kTile, n0 = blockIdx.x * kTile;
  const int ty = threadIdx.x / kTile, tx = threadIdx.x % kTile;  // owns C[m0 + ty][n0 + tx]
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += kTile) {
    load_tile<kTile, kTile, kThreads, TA, false, kTile>(As, A, p.lda, p.M, K, m0, k0);
    load_tile<kTile, kTile, kThreads, TB, false, kTile>(Bs, B, p.ldb, K, p.N, k0, n0);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTile; ++k) acc += As[ty * kTile + k] * Bs[k * kTile + tx];
    __syncthreads();  // the next iteration overwrites the tiles
  }
  const int m = m0 + ty, n = n0 + tx;
  if (m < p.M && n < p.N) C[static_cast<int64_t>(m) * p.ldc + n] = acc;
}

void run(const GemmArgs& args, cudaStream_t stream) {
  with_transposes(args, [&](auto ta, auto tb) {
    launch("v3_smem_tiling", smem_tiling_kernel<decltype(ta)::value, decltype(tb)::value>,
           dim3(ceil_div(args.N, kTile), ceil_div(args.M, kTile)), dim3(kThreads), args, stream);
  });
}

// No epilogue and no masks here: v5 and v7 implement them.
bool supports(const GemmArgs& a) {
  return !a.has_epilogue() && !a.has_mask() && grid_fits(a, kTile);
}

}  // namespace

SgemmVersion sgemm_v3_smem_tiling() {
  return {3, "smem_tiling",
          "32x32 tiles of A and B staged in shared memory: each global element read once per block",
          run, supports};
}

}  // namespace tg::cuda
