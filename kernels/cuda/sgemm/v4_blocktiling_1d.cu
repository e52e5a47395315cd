// SGEMM v4, 1-D register blocktiling: each thread computes a column of 8 elements of C instead of
// one, so one value of B read from shared memory serves 8 multiply-adds.
//
// Block tile 64 x 64 of C, K in steps of 8, 512 threads. Thread t owns column n0 + t % 64 and rows
// m0 + 8 * (t / 64) .. + 7, with 8 accumulators in registers. In the inner loop it reads B once
// and A 8 times (the A reads of a warp are all the same address, a broadcast) for 8 FMAs: shared
// loads per FMA drop from 2 to 9/8. Fewer threads per element also means fewer, larger tiles.
#include "kernels/cuda/sgemm/common.cuh"
#include "kernels/cuda/sgemm/versions.h"

namespace tg::cuda {
namespace {

using namespace sgemm_detail;

constexpr int BM = 64, BN = 64, BK = 8, TM = 8;
constexpr int kThreads = BM * BN / TM;  // 512

template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads) blocktiling_1d_kernel(GemmArgs p) {
  kernel_prologue();
  const int K = entry_k(p);  // this entry's K: its slice's, under split-K
  __shared__ float As[BM * BK];  // As[m][k]
  __shared__ float Bs[BK * BN];  // Bs[k][n]
  const float *A, *B;
  float* C;
  select_batch(p, A, B, C);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int tcol = threadIdx.x % BN, trow = threadIdx.x / BN;  // rows trow * TM .. + TM - 1
  float acc[TM] = {};
  for (int k0 = 0; k0 < K; k0 += BK) {
    load_tile<BM, BK, kThreads, TA, false, BK>(As, A, p.lda, p.M, K, m0, k0);
    load_tile<BK, BN, kThreads, TB, false, BN>(Bs, B, p.ldb, K, p.N, k0, n0);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      const float b = Bs[k * BN + tcol];
#pragma unroll
      for (int i = 0; i < TM; ++i) acc[i] += As[(trow * TM + i) * BK + k] * b;
    }
    __syncthreads();
  }
  const int n = n0 + tcol;
  if (n >= p.N) return;
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + trow * TM + i;
    if (m < p.M) C[static_cast<int64_t>(m) * p.ldc + n] = acc[i];
  }
}

void run(const GemmArgs& args, cudaStream_t stream) {
  with_transposes(args, [&](auto ta, auto tb) {
    launch("v4_blocktiling_1d", blocktiling_1d_kernel<decltype(ta)::value, decltype(tb)::value>,
           dim3(ceil_div(args.N, BN), ceil_div(args.M, BM)), dim3(kThreads), args, stream);
  });
}

// No epilogue and no masks here: v5 and v7 implement them.
bool supports(const GemmArgs& a) {
  return !a.has_epilogue() && !a.has_mask() && grid_fits(a, BM);
}

}  // namespace

SgemmVersion sgemm_v4_blocktiling_1d() {
  return {4, "blocktiling_1d",
          "each thread computes 8 elements of a column of C: one shared read of B feeds 8 FMAs",
          run, supports};
}

}  // namespace tg::cuda
