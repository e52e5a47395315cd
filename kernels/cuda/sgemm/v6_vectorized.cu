// SGEMM v6, vectorised 16-byte loads: v5's tiling with every global read, shared read and global
// write of 16 bytes (float4), and the A tile stored transposed in shared memory.
//
// Block tile 128 x 128, K in steps of 8, 256 threads, 8 x 8 of C per thread as in v5. Global reads
// go four floats at a time along whichever dimension of the operand is contiguous in memory. The
// A tile is stored k-major, As[k][m], so a thread's 8 values of A for one k are adjacent and come
// in two 16-byte shared loads, like its 8 values of B: 4 shared load instructions per 64 FMAs
// (v5: 16). Storing a row-major A tile k-major takes four scalar shared stores per float4; a
// transposed A (A^T @ B in backward) is already k-major and goes in with one. Rows are padded by
// 4 floats, which keeps those scalar stores from colliding in the same bank.
// Needs 16-byte aligned rows (pointers, leading dimensions and batch strides multiples of 4
// floats): supports() declines other arguments, which best_sgemm() gives another version.
// Edges of the matrix (M, N, K not multiples of the tile) are handled with scalar loads and
// stores.
#include "kernels/cuda/sgemm/common.cuh"
#include "kernels/cuda/sgemm/versions.h"

namespace tg::cuda {
namespace {

using namespace sgemm_detail;

constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8;
constexpr int kThreads = (BM / TM) * (BN / TN);  // 256
constexpr int LDA_S = BM + 4, LDB_S = BN + 4;    // padded shared rows, still 16-byte multiples

template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads) vectorized_kernel(GemmArgs p) {
  kernel_prologue();
  const int K = entry_k(p);  // this entry's K: its slice's, under split-K
  __shared__ __align__(16) float As[BK * LDA_S];  // As[k][m]: transposed
  __shared__ __align__(16) float Bs[BK * LDB_S];  // Bs[k][n]
  const float *A, *B;
  float* C;
  select_batch(p, A, B, C);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int trow = threadIdx.x / (BN / TN), tcol = threadIdx.x % (BN / TN);
  float acc[TM][TN] = {};
  float a_reg[TM], b_reg[TN];
  for (int k0 = 0; k0 < K; k0 += BK) {
    load_tile_float4<BM, BK, kThreads, TA, true, LDA_S>(As, A, p.lda, p.M, K, m0, k0);
    load_tile_float4<BK, BN, kThreads, TB, false, LDB_S>(Bs, B, p.ldb, K, p.N, k0, n0);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
#pragma unroll
      for (int i = 0; i < TM; i += 4) {
        const float4 a = *reinterpret_cast<const float4*>(&As[k * LDA_S + trow * TM + i]);
        a_reg[i] = a.x, a_reg[i + 1] = a.y, a_reg[i + 2] = a.z, a_reg[i + 3] = a.w;
      }
#pragma unroll
      for (int j = 0; j < TN; j += 4) {
        const float4 b = *reinterpret_cast<const float4*>(&Bs[k * LDB_S + tcol * TN + j]);
        b_reg[j] = b.x, b_reg[j + 1] = b.y, b_reg[j + 2] = b.z, b_reg[j + 3] = b.w;
      }
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
#pragma unroll
    for (int j = 0; j < TN; j += 4)
      store4(C, p.ldc, m, n0 + tcol * TN + j, p.M, p.N,
             make_float4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]));
  }
}

void run(const GemmArgs& args, cudaStream_t stream) {
  with_transposes(args, [&](auto ta, auto tb) {
    launch("v6_vectorized", vectorized_kernel<decltype(ta)::value, decltype(tb)::value>,
           dim3(ceil_div(args.N, BN), ceil_div(args.M, BM)), dim3(kThreads), args, stream);
  });
}

// No epilogue and no masks here: v5 and v7 implement them.
bool supports(const GemmArgs& a) {
  return !a.has_epilogue() && !a.has_mask() && float4_aligned(a) && grid_fits(a, BM);
}

}  // namespace

SgemmVersion sgemm_v6_vectorized() {
  return {6, "vectorized",
          "16-byte global and shared accesses, A tile transposed in shared memory (needs aligned "
          "rows)",
          run, supports};
}

}  // namespace tg::cuda
