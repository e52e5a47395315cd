// SGEMM v8, TF32 tensor cores through WMMA (<mma.h>): v7's block tile (128 x 128, 256 threads,
// 16-byte tile loads into shared memory, K in steps of 16), but each warp's 64 x 32 of C is
// 4 x 2 tensor-core tiles of 16 x 16, and each k step of 8 is one mma_sync per tile. The inputs
// are rounded to TF32 (10 mantissa bits, to nearest: __float_to_tf32) as they leave shared
// memory; products and sums are float32. So it is not float32-exact: about 1e-3 relative error,
// as cuBLAS with TF32 on, and best_sgemm() takes it only where TF32 is allowed (allow_tf32():
// TG_CUDA_TF32=1, as PyTorch's torch.backends.cuda.matmul.allow_tf32). The accumulators leave
// through a 16 x 16 staging tile per warp in shared memory, then the other versions' edge checks
// and epilogue (bias, activation, pre, residual). Operand masks as in v5 and v7 (applied in the tile loads).
// Needs sm_80 (Ampere) or later: the build's architectures are sm_80 and sm_90.
#include "kernels/cuda/sgemm/common.cuh"
#include "kernels/cuda/sgemm/versions.h"
#ifndef TG_CUDA_HOST_EMULATION
#include <mma.h>
#endif

namespace tg::cuda {
namespace {

using namespace sgemm_detail;
namespace wmma = nvcuda::wmma;

constexpr int BM = 128, BN = 128, BK = 16;
constexpr int WM = 64, WN = 32;                     // warp tile; warps 2 (M) x 4 (N)
constexpr int WARPS_N = BN / WN;
constexpr int kWarps = (BM / WM) * WARPS_N;
constexpr int kThreads = kWarps * 32;               // 256
constexpr int TILES_M = WM / 16, TILES_N = WN / 16;  // tensor-core tiles per warp
// Shared rows of a multiple of 4 floats (WMMA's ldm for TF32), and every 16 x 8 or 8 x 16 tile
// that load_matrix_sync reads starting on a 32-byte boundary (rows of 16 * 20 and 8 * 132 floats).
constexpr int LDA_S = BK + 4, LDB_S = BN + 4, LDC_S = 16 + 4;

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;

template <typename Frag>
__device__ __forceinline__ void round_to_tf32(Frag& f) {
#pragma unroll
  for (int e = 0; e < f.num_elements; ++e) f.x[e] = wmma::__float_to_tf32(f.x[e]);
}

template <bool TA, bool TB, bool EPI, bool MASK>
__global__ void __launch_bounds__(kThreads) wmma_tf32_kernel(GemmArgs p) {
  kernel_prologue();
  const int K = entry_k(p);  // this entry's K: its slice's, under split-K
  __shared__ __align__(32) float As[BM * LDA_S];            // As[m][k]
  __shared__ __align__(32) float Bs[BK * LDB_S];            // Bs[k][n]
  __shared__ __align__(32) float Cs[kWarps * 16 * LDC_S];   // a 16 x 16 tile per warp
  const float *A, *B, *mask_a, *mask_b;
  float* C;
  select_batch(p, A, B, C);
  select_batch_masks(p, mask_a, mask_b);
  const EpilogueRows epi_rows = EPI ? select_batch_epilogue(p) : EpilogueRows{};
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warp_row = (warp / WARPS_N) * WM, warp_col = (warp % WARPS_N) * WN;
  FragC acc[TILES_M][TILES_N];
#pragma unroll
  for (int i = 0; i < TILES_M; ++i)
#pragma unroll
    for (int j = 0; j < TILES_N; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  for (int k0 = 0; k0 < K; k0 += BK) {
    load_tile_float4<BM, BK, kThreads, TA, false, LDA_S, MASK>(As, A, p.lda, p.M, K, m0, k0,
                                                               mask_a);
    load_tile_float4<BK, BN, kThreads, TB, false, LDB_S, MASK>(Bs, B, p.ldb, K, p.N, k0, n0,
                                                               mask_b);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      FragA a[TILES_M];
      FragB b[TILES_N];
#pragma unroll
      for (int i = 0; i < TILES_M; ++i) {
        wmma::load_matrix_sync(a[i], As + (warp_row + i * 16) * LDA_S + kk, LDA_S);
        round_to_tf32(a[i]);
      }
#pragma unroll
      for (int j = 0; j < TILES_N; ++j) {
        wmma::load_matrix_sync(b[j], Bs + kk * LDB_S + warp_col + j * 16, LDB_S);
        round_to_tf32(b[j]);
      }
#pragma unroll
      for (int i = 0; i < TILES_M; ++i)
#pragma unroll
        for (int j = 0; j < TILES_N; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

  // Each tile through the warp's staging tile, then out element by element with the edge checks.
  float* const stage = Cs + warp * 16 * LDC_S;
#pragma unroll
  for (int i = 0; i < TILES_M; ++i)
#pragma unroll
    for (int j = 0; j < TILES_N; ++j) {
      wmma::store_matrix_sync(stage, acc[i][j], LDC_S, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 16 * 16; e += 32) {
        const int r = e / 16, c = e % 16;
        const int m = m0 + warp_row + i * 16 + r, n = n0 + warp_col + j * 16 + c;
        if (m < p.M && n < p.N)
          store_one<EPI>(p, C, epi_rows, static_cast<int64_t>(m) * p.ldc + n, n,
                         stage[r * LDC_S + c]);
      }
      __syncwarp();  // before the next tile overwrites the stage
    }
}

void run(const GemmArgs& args, cudaStream_t stream) {
  with_transposes_epilogue_and_mask(args, [&](auto ta, auto tb, auto epi, auto mask) {
    launch("v8_wmma_tf32",
           wmma_tf32_kernel<decltype(ta)::value, decltype(tb)::value, decltype(epi)::value,
                            decltype(mask)::value>,
           dim3(ceil_div(args.N, BN), ceil_div(args.M, BM)), dim3(kThreads), args, stream);
  });
}

bool supports(const GemmArgs& a) { return float4_aligned(a) && grid_fits(a, BM); }

}  // namespace

SgemmVersion sgemm_v8_wmma_tf32() {
  SgemmVersion v{8, "wmma_tf32",
                 "TF32 tensor cores (WMMA 16x16x8) on v7's tiles: inputs rounded to TF32, ~1e-3",
                 run, supports};
  v.tf32 = true;
  return v;
}

}  // namespace tg::cuda
