// SGEMM v7, warptiling: between the block tile and the thread tile sits a warp tile, so that the
// 32 threads of a warp work on one compact region of C and read compact runs of shared memory.
//
// Block tile 128 x 128, K in steps of 16 (half as many barriers per FMA as v6), 256 threads =
// 8 warps arranged 2 (M) x 4 (N), each owning a 64 x 32 warp tile. A warp covers its tile in
// 2 x 2 steps of 32 x 16; within a step its lanes form an 8 x 4 grid, each lane computing 4 x 4.
// So a thread still owns 8 x 8 of C (as in v6), but as 2 x 2 blocks of 4 x 4 spread over the
// warp tile. Per k, the warp's shared reads are then 8 adjacent float4s of As and 4 adjacent
// float4s of Bs per step (v6: the Bs float4s of a warp are 16 scattered runs, two bank wavefronts
// each), and its stores to C are runs of 64 bytes. Same 16-byte tile loaders as v6.
// Implements the epilogue (bias, activation, pre-activation output, residual) and the operand
// masks (a ReLU backward's dy, 0 where y <= 0; one more 16-byte read per four elements),
// each in a separate kernel per layout. Seven of the 16 layouts are held to 128 registers, so
// that an SM runs two blocks (blocks_per_sm, below).
// Rows that are not 16-byte aligned (the nanda unembedding's 113 columns) take the same kernel
// with each float4 of a tile load or C store moved as four floats (ALIGNED false), masks
// excepted; before, best_sgemm() fell back to v5 for them.
#include "kernels/cuda/sgemm/common.cuh"
#include "kernels/cuda/sgemm/versions.h"

namespace tg::cuda {
namespace {

using namespace sgemm_detail;

constexpr int BM = 128, BN = 128, BK = 16;
constexpr int WM = 64, WN = 32;                    // warp tile
constexpr int WARPS_N = BN / WN;                   // 4 warps across, BM / WM = 2 down
constexpr int kThreads = (BM / WM) * WARPS_N * 32;  // 256
constexpr int WMITER = 2, WNITER = 2;              // steps per warp tile
constexpr int WSUBM = WM / WMITER, WSUBN = WN / WNITER;  // 32 x 16 per step
constexpr int TM = 4, TN = 4;                      // per lane per step
constexpr int LANES_N = WSUBN / TN;                // lanes form (WSUBM / TM) x LANES_N = 8 x 4
static_assert((WSUBM / TM) * LANES_N == 32, "one step of a warp is 32 lanes");
static_assert(TM == 4 && TN == 4, "the shared reads and C stores below move 4 floats at a time");
constexpr int LDA_S = BM + 4, LDB_S = BN + 4;

// Blocks an SM holds at once. Left to itself ptxas gives most layouts 149-173 registers a thread,
// so a 256-thread block takes more than half of an SM's 65,536 registers and the SM runs one block:
// 8 warps to hide each other's trips to memory. v6, at 125-128 registers and two blocks an SM, beat
// v7 on the large squares of the first H200 run. Held to 128 registers (two blocks, 16 warps),
// these layouts compile without spilling on sm_80 and sm_90 (nvcc 13, ptxas -v): every layout
// without a mask, except the epilogue after a transposed B tile, and the ReLU backward's input
// gradient (dy masked, W transposed). The other nine keep one block: eight spill at 128 on sm_80 or
// sm_90, and the ninth (every flag set) no caller uses. The unaligned kernels (ALIGNED false) fit
// 128 registers unasked. Grids of at most one wave (the nanda step's products, split-K's 128
// blocks) run one block an SM either way.
template <bool TA, bool TB, bool EPI, bool MASK>
constexpr int blocks_per_sm() {
  const bool fits_128 = (!MASK && !(EPI && TB)) || (!TA && TB && !EPI && MASK);
  return fits_128 ? 2 : 1;
}

template <bool TA, bool TB, bool EPI, bool MASK, bool ALIGNED>
__global__ void __launch_bounds__(kThreads, (blocks_per_sm<TA, TB, EPI, MASK>()))
    warptiling_kernel(GemmArgs p) {
  kernel_prologue();
  const int K = entry_k(p);  // this entry's K: its slice's, under split-K
  __shared__ __align__(16) float As[BK * LDA_S];  // As[k][m]: transposed
  __shared__ __align__(16) float Bs[BK * LDB_S];  // Bs[k][n]
  const float *A, *B, *mask_a, *mask_b;
  float* C;
  select_batch(p, A, B, C);
  select_batch_masks(p, mask_a, mask_b);
  const EpilogueRows epi_rows = EPI ? select_batch_epilogue(p) : EpilogueRows{};
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // Offsets inside the block tile of this lane's first 4 x 4: step (wm, wn) adds wm * WSUBM rows
  // and wn * WSUBN columns.
  const int row = (warp / WARPS_N) * WM + (lane / LANES_N) * TM;
  const int col = (warp % WARPS_N) * WN + (lane % LANES_N) * TN;
  float acc[WMITER * TM][WNITER * TN] = {};
  float a_reg[WMITER * TM], b_reg[WNITER * TN];
  for (int k0 = 0; k0 < K; k0 += BK) {
    load_tile_float4<BM, BK, kThreads, TA, true, LDA_S, MASK, ALIGNED>(As, A, p.lda, p.M, K, m0,
                                                                       k0, mask_a);
    load_tile_float4<BK, BN, kThreads, TB, false, LDB_S, MASK, ALIGNED>(Bs, B, p.ldb, K, p.N, k0,
                                                                        n0, mask_b);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
#pragma unroll
      for (int wm = 0; wm < WMITER; ++wm) {
        const float4 a = *reinterpret_cast<const float4*>(&As[k * LDA_S + row + wm * WSUBM]);
        a_reg[wm * TM] = a.x, a_reg[wm * TM + 1] = a.y;
        a_reg[wm * TM + 2] = a.z, a_reg[wm * TM + 3] = a.w;
      }
#pragma unroll
      for (int wn = 0; wn < WNITER; ++wn) {
        const float4 b = *reinterpret_cast<const float4*>(&Bs[k * LDB_S + col + wn * WSUBN]);
        b_reg[wn * TN] = b.x, b_reg[wn * TN + 1] = b.y;
        b_reg[wn * TN + 2] = b.z, b_reg[wn * TN + 3] = b.w;
      }
#pragma unroll
      for (int i = 0; i < WMITER * TM; ++i)
#pragma unroll
        for (int j = 0; j < WNITER * TN; ++j) acc[i][j] += a_reg[i] * b_reg[j];
    }
    __syncthreads();
  }
  // acc[wm * TM + i][wn * TN + j] is C[m0 + row + wm * WSUBM + i][n0 + col + wn * WSUBN + j].
#pragma unroll
  for (int wm = 0; wm < WMITER; ++wm)
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int wn = 0; wn < WNITER; ++wn) {
        const int r = wm * TM + i, c = wn * TN;
        store4_epilogue<EPI, ALIGNED>(
            p, C, epi_rows, m0 + row + wm * WSUBM + i, n0 + col + wn * WSUBN,
            make_float4(acc[r][c], acc[r][c + 1], acc[r][c + 2], acc[r][c + 3]));
      }
}

void run(const GemmArgs& args, cudaStream_t stream) {
  const bool aligned = float4_aligned(args);
  with_transposes_epilogue_and_mask(args, [&](auto ta, auto tb, auto epi, auto mask) {
    constexpr bool TA = decltype(ta)::value, TB = decltype(tb)::value;
    constexpr bool EPI = decltype(epi)::value, MASK = decltype(mask)::value;
    const dim3 grid(ceil_div(args.N, BN), ceil_div(args.M, BM));
    if (aligned)
      launch("v7_warptiling", warptiling_kernel<TA, TB, EPI, MASK, true>, grid, dim3(kThreads),
             args, stream);
    else if constexpr (!MASK)
      launch("v7_warptiling", warptiling_kernel<TA, TB, EPI, false, false>, grid,
             dim3(kThreads), args, stream);
    else  // supports() declines them
      throw Error("sgemm v7_warptiling: operand masks need 16-byte aligned rows");
  });
}

// Any alignment without masks; masked operands need 16-byte rows.
bool supports(const GemmArgs& a) {
  return (float4_aligned(a) || !a.has_mask()) && grid_fits(a, BM);
}

}  // namespace

SgemmVersion sgemm_v7_warptiling() {
  return {7, "warptiling",
          "warp tiles of 64x32, 4x4 per lane per step: compact shared reads and C stores, BK 16; "
          "4-byte loads where rows are not 16-byte aligned",
          run, supports};
}

}  // namespace tg::cuda
