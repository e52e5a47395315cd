// SGEMM v5, 2-D register blocktiling: each thread computes an 8 x 8 block of C from 8 values of A
// and 8 of B held in registers: 16 shared loads for 64 FMAs.
//
// Block tile 128 x 128 of C, K in steps of 8, 256 threads arranged 16 x 16, each owning the 8 x 8
// outer product of a column slice of As and a row slice of Bs per k. Shared loads per FMA: 1/4
// (v4: 9/8). The 64 accumulators and 16 operands stay in registers because every index into them
// is a compile-time constant (unrolled loops). Tiles load with scalar reads, zero-filled at the
// edges: this version accepts every shape, layout and alignment, the epilogue (bias,
// activation, pre-activation output, residual) and the operand masks (each a separate kernel per layout),
// and is the fallback when the 16-byte versions decline.
#include "kernels/cuda/sgemm/common.cuh"
#include "kernels/cuda/sgemm/versions.h"

namespace tg::cuda {
namespace {

using namespace sgemm_detail;

constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8;
constexpr int kThreads = (BM / TM) * (BN / TN);  // 256

template <bool TA, bool TB, bool EPI, bool MASK>
__global__ void __launch_bounds__(kThreads) blocktiling_2d_kernel(GemmArgs p) {
  kernel_prologue();
  const int K = entry_k(p);  // this entry's K: its slice's, under split-K
  __shared__ float As[BM * BK];  // As[m][k]
  __shared__ float Bs[BK * BN];  // Bs[k][n]
  const float *A, *B, *mask_a, *mask_b;
  float* C;
  select_batch(p, A, B, C);
  select_batch_masks(p, mask_a, mask_b);
  const EpilogueRows epi_rows = EPI ? select_batch_epilogue(p) : EpilogueRows{};
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  // This thread's block of C: rows m0 + trow * TM + i, columns n0 + tcol * TN + j.
  const int trow = threadIdx.x / (BN / TN), tcol = threadIdx.x % (BN / TN);
  float acc[TM][TN] = {};
  float a_reg[TM], b_reg[TN];
  for (int k0 = 0; k0 < K; k0 += BK) {
    load_tile<BM, BK, kThreads, TA, false, BK, MASK>(As, A, p.lda, p.M, K, m0, k0, mask_a);
    load_tile<BK, BN, kThreads, TB, false, BN, MASK>(Bs, B, p.ldb, K, p.N, k0, n0, mask_b);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
#pragma unroll
      for (int i = 0; i < TM; ++i) a_reg[i] = As[(trow * TM + i) * BK + k];
#pragma unroll
      for (int j = 0; j < TN; ++j) b_reg[j] = Bs[k * BN + tcol * TN + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += a_reg[i] * b_reg[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + trow * TM + i;
    if (m >= p.M) break;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + tcol * TN + j;
      if (n < p.N) store_one<EPI>(p, C, epi_rows, static_cast<int64_t>(m) * p.ldc + n, n,
                                        acc[i][j]);
    }
  }
}

void run(const GemmArgs& args, cudaStream_t stream) {
  with_transposes_epilogue_and_mask(args, [&](auto ta, auto tb, auto epi, auto mask) {
    launch("v5_blocktiling_2d",
           blocktiling_2d_kernel<decltype(ta)::value, decltype(tb)::value, decltype(epi)::value,
                                 decltype(mask)::value>,
           dim3(ceil_div(args.N, BN), ceil_div(args.M, BM)), dim3(kThreads), args, stream);
  });
}

bool supports(const GemmArgs& a) { return grid_fits(a, BM); }

}  // namespace

SgemmVersion sgemm_v5_blocktiling_2d() {
  return {5, "blocktiling_2d",
          "each thread computes an 8x8 block of C from registers: 16 shared loads per 64 FMAs",
          run, supports};
}

}  // namespace tg::cuda
