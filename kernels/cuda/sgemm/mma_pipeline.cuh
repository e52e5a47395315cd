// The tensor-core SGEMM that v9 (3xTF32, float32-accurate) and v10 (TF32) instantiate: PTX
// mma.sync fragments instead of WMMA, tiles small enough to fill the GPU at the model's shapes,
// and a three-stage cp.async pipeline that copies the next tiles while the tensor cores work.
//
// Why these choices (docs/benchmarks.md, the first H200 run): v7 and v8 run one 256-thread
// block of 128 x 128 per SM, and a product of 3,830 x 512 then fills less than one wave of 132
// SMs at 12.5% occupancy. Here a block is 64 x 64 of C with 128 threads (4 warps of 32 x 32),
// so that product has 480 blocks and an SM holds several; K goes in tiles of 16. The block
// tiling is a template parameter (Tiling, below): v9 and v10 take DefaultTiling, and
// mma_tilings.h lists others, for a GPU run to time at the step's shapes (3,830 x 128 outputs
// make only 120 blocks of 64 x 64) before v9's default changes.
//
// Each tile keeps its stored layout in shared memory (A as [m][k], or [k][m] when stored
// transposed; B as [k][n], or [n][k]), so every copy is a straight cp.async of 16 bytes (4 when
// the rows are not 16-byte aligned: the unembedding's 113 columns) with zeros past the edges, and
// the rows are padded so that a warp's fragment reads hit 32 different banks. A warp's 32 x 32
// is 2 x 4 mma tiles of 16 x 8; per k step of 8 it reads its A and B fragments from shared memory
// as the PTX ISA lays them out (tensor_core.cuh), rounds or splits them to TF32, and issues the
// mma.sync instructions.
//
// SPLIT (3xTF32): each operand element is big + small (split_tf32), and the product
// accumulates small * big' + big * small' + big * big', three mma per tile and k step: float32
// accuracy on tensor cores. Without SPLIT, one mma of the rounded inputs: TF32's ~1e-3.
//
// The pipeline: tiles 0 and 1 are in flight before the loop; at tile t the block waits for
// tile t's copies, passes a barrier (so every thread's copies are visible, and every warp has
// finished tile t - 1), starts the copies of tile t + 2 into the slot tile t - 1 used, and
// computes tile t. One barrier per tile. With an operand mask (a ReLU backward's dy read where y
// is positive) the mask's tile is copied the same way, into a slot of its own, and once the
// wait says a thread's copies have landed, the thread zeroes the elements it copied where their
// mask is not positive, before the barrier: the copies stay asynchronous and the barrier is
// still the only one. (Both operands masked, which no caller asks for, would need two mask
// slots beyond the 48 KB of static shared memory: the second then loads through its mask into
// registers and stores plainly, as v7 does.) The epilogue (bias, activation, pre, residual) as
// the other versions: store_one, element by element, from the accumulators.
#pragma once

#include <string>

#include "kernels/cuda/sgemm/common.cuh"
#include "kernels/cuda/sgemm/tensor_core.cuh"

namespace tg::cuda::sgemm_detail::mma_pipeline {

constexpr int max_of(int a, int b) { return a > b ? a : b; }

// A block's tiling: BM x BN of C, K in tiles of BK, warps of WM x WN (each MI x NI mma tiles of
// 16 x 8), STAGES tiles in flight.
template <int BM_, int BN_, int BK_, int WM_, int WN_, int STAGES_>
struct Tiling {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, WM = WM_, WN = WN_, STAGES = STAGES_;
  static constexpr int WARPS_N = BN / WN;
  static constexpr int kThreads = (BM / WM) * WARPS_N * 32;
  static constexpr int MI = WM / 16, NI = WN / 8;
  // Shared rows: a tile stored along k is BK floats wide, padded by 4 (at BK = 16, to 20: a
  // fragment read's 8 rows x 4 columns then fall on banks 20 g + t, all different); a tile
  // stored along m or n is padded by 8 (at 64, to 72: 4 rows x 8 columns on banks 8 t + g).
  // Both keep rows 16-byte aligned.
  static constexpr int LD_K = BK + 4, LD_M = BM + 8, LD_N = BN + 8;
  static constexpr int kSlotA = max_of(BM * LD_K, BK * LD_M);  // floats, either layout
  static constexpr int kSlotB = max_of(BN * LD_K, BK * LD_N);
  static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 8 == 0,
                "warps of whole mma tiles cover the block");
  static_assert(BK % 8 == 0 && BM % 16 == 0 && BN % 16 == 0,
                "k steps of 8; the paddings above keep fragment reads off shared banks");
  static_assert(STAGES >= 2, "a tile in flight while one is computed");
  // "64x64k16s3w4": the name mma_tilings.h lists it by.
  static std::string name() {
    return std::to_string(BM) + "x" + std::to_string(BN) + "k" + std::to_string(BK) + "s" +
           std::to_string(STAGES) + "w" + std::to_string(kThreads / 32);
  }
};
// v9's and v10's.
using DefaultTiling = Tiling<64, 64, 16, 32, 32, 3>;

// Where a tile of R x C (stored transposed when T, in rows of LDS floats) lies in its slot, and
// which of its copies thread threadIdx.x (of THREADS) makes: copy j < kCopies is of VEC floats at
// stored (row, col).
template <int R, int C, bool T, int VEC, int LDS_, int THREADS>
struct TileCopies {
  static constexpr int SR = T ? C : R, SC = T ? R : C;  // the tile in the stored layout
  static constexpr int LDS = LDS_;
  static constexpr int PER_ROW = SC / VEC;
  static constexpr int kCopies = SR * PER_ROW / THREADS;
  static_assert((SR * PER_ROW) % THREADS == 0, "every thread copies the same count");
  __device__ static int row(int j) {
    return (static_cast<int>(threadIdx.x) + j * THREADS) / PER_ROW;
  }
  __device__ static int col(int j) {
    return (static_cast<int>(threadIdx.x) + j * THREADS) % PER_ROW * VEC;
  }
};
// A's tiles (BM x BK, stored [m][k], or [k][m] when TA) and B's (BK x BN, [k][n] or [n][k]).
template <class L, bool TA, int VEC>
using ATile = TileCopies<L::BM, L::BK, TA, VEC, TA ? L::LD_M : L::LD_K, L::kThreads>;
template <class L, bool TB, int VEC>
using BTile = TileCopies<L::BK, L::BN, TB, VEC, TB ? L::LD_K : L::LD_N, L::kThreads>;

// Copies the tile (Tile: a TileCopies) at logical (r0, c0) of a rows x cols operand X (stored
// transposed when T) into the slot s, in the stored layout, zeros past the edges: VEC = 4,
// cp.async of 16 bytes (X's rows 16-byte aligned); VEC = 1, of 4 bytes. With MASK and a mask
// (laid out as X): with a mask slot mask_s, the mask's tile is copied there the same way
// (mask_own_copies applies it once the copies land); without one, loads through the mask into
// registers, stored plainly.
template <class Tile, bool T, int VEC, bool MASK>
__device__ __forceinline__ void load_tile_async(float* s, const float* X, const float* mask,
                                                float* mask_s, int64_t ld, int rows, int cols,
                                                int r0, int c0) {
  const int stored_rows = T ? cols : rows, stored_cols = T ? rows : cols;
  const int sr0 = T ? c0 : r0, sc0 = T ? r0 : c0;
  // At most four copies unrolled: the 4-byte copies' eight, all unrolled, held their addresses
  // in up to 168 registers a thread on sm_90 (v9 94-168, v10 121-168, two of v10's masked
  // layouts spilling), where four at a time take 67-122 (sm_80: 80-124).
#pragma unroll 4
  for (int j = 0; j < Tile::kCopies; ++j) {
    const int sr = Tile::row(j), sc = Tile::col(j);
    const int gr = sr0 + sr, gc = sc0 + sc;
    float* const to = s + sr * Tile::LDS + sc;
    if (MASK && mask != nullptr && mask_s == nullptr) {  // the same for the whole block
      if constexpr (VEC == 4) {
        *reinterpret_cast<float4*>(to) =
            load4_masked(X, mask, ld, gr, gc, stored_rows, stored_cols);
      } else {
        float v = 0.0f;
        if (gr < stored_rows && gc < stored_cols) {
          const int64_t at = static_cast<int64_t>(gr) * ld + gc;
          v = relu_masked(mask[at], X[at]);
        }
        *to = v;
      }
    } else {
      // The elements of this copy inside the matrix (0 past an edge: all zeros, X not read).
      const int left = gr < stored_rows ? stored_cols - gc : 0;
      const int inside = left < 0 ? 0 : left < VEC ? left : VEC;
      const int64_t at = inside > 0 ? static_cast<int64_t>(gr) * ld + gc : 0;
      cp_async<VEC * 4>(to, X + at, inside * 4);
      if (MASK && mask_s != nullptr)
        cp_async<VEC * 4>(mask_s + sr * Tile::LDS + sc, mask + at, inside * 4);
    }
  }
}

// Zeroes the elements of slot s this thread copied (load_tile_async) where their mask, copied to
// mask_s, is not positive. Needs only this thread's copies landed: no barrier before it.
template <class Tile, int VEC>
__device__ __forceinline__ void mask_own_copies(float* s, const float* mask_s) {
#pragma unroll
  for (int j = 0; j < Tile::kCopies; ++j) {
    const int at = Tile::row(j) * Tile::LDS + Tile::col(j);
#pragma unroll
    for (int e = 0; e < VEC; ++e) s[at + e] = relu_masked(mask_s[at + e], s[at + e]);
  }
}

// Element (m, k) of the A tile and (k, n) of the B tile in their slots.
template <class L, bool TA>
__device__ __forceinline__ float a_at(const float* s, int m, int k) {
  return TA ? s[k * L::LD_M + m] : s[m * L::LD_K + k];
}
template <class L, bool TB>
__device__ __forceinline__ float b_at(const float* s, int k, int n) {
  return TB ? s[n * L::LD_K + k] : s[k * L::LD_N + n];
}

// One operand element as the mma's TF32 input: big (rounded) and, with SPLIT, small.
template <bool SPLIT>
__device__ __forceinline__ void to_tf32(float x, uint32_t& big, uint32_t& small) {
  if constexpr (SPLIT) {
    split_tf32(x, big, small);
  } else {
    big = __float_as_uint(round_to_tf32(x));
    small = 0;
  }
}

template <class L, bool SPLIT, bool TA, bool TB, bool EPI, bool MASK, int VEC>
__global__ void __launch_bounds__(L::kThreads) mma_kernel(GemmArgs p) {
  constexpr int BM = L::BM, BN = L::BN, BK = L::BK, STAGES = L::STAGES;
  constexpr int WM = L::WM, WN = L::WN, WARPS_N = L::WARPS_N, MI = L::MI, NI = L::NI;
  using ATiles = ATile<L, TA, VEC>;
  using BTiles = BTile<L, TB, VEC>;
  kernel_prologue();
  const int K = entry_k(p);  // this entry's K: its slice's, under split-K
  constexpr int kMaskSlot = MASK ? max_of(L::kSlotA, L::kSlotB) : 4;
  __shared__ __align__(16) float As[STAGES][L::kSlotA];
  __shared__ __align__(16) float Bs[STAGES][L::kSlotB];
  __shared__ __align__(16) float Ms[MASK ? STAGES : 1][kMaskSlot];  // a mask's tiles
  static_assert(sizeof(As) + sizeof(Bs) + sizeof(Ms) <= 48 * 1024,
                "within a block's static shared memory");
  const float *A, *B, *mask_a, *mask_b;
  float* C;
  select_batch(p, A, B, C);
  select_batch_masks(p, mask_a, mask_b);
  // The masked operand's mask is copied asynchronously when it is the only one (block-uniform).
  const bool async_mask_a = MASK && mask_a != nullptr && mask_b == nullptr;
  const bool async_mask_b = MASK && mask_b != nullptr && mask_a == nullptr;
  const EpilogueRows epi_rows = EPI ? select_batch_epilogue(p) : EpilogueRows{};
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;  // the lane's place in the mma fragments
  const int wm0 = (warp / WARPS_N) * WM, wn0 = (warp % WARPS_N) * WN;

  const int tiles = ceil_div(K, BK);
  auto load = [&](int tile) {
    const int slot = tile % STAGES, k0 = tile * BK;
    load_tile_async<ATiles, TA, VEC, MASK>(As[slot], A, mask_a,
                                           async_mask_a ? Ms[slot] : nullptr, p.lda, p.M, K, m0,
                                           k0);
    load_tile_async<BTiles, TB, VEC, MASK>(Bs[slot], B, mask_b,
                                           async_mask_b ? Ms[slot] : nullptr, p.ldb, K, p.N, k0,
                                           n0);
  };
#pragma unroll
  for (int tile = 0; tile < STAGES - 1; ++tile) {
    if (tile < tiles) load(tile);
    cp_async_commit();  // an empty group past the last tile keeps the wait's count simple
  }

  float acc[MI][NI][4] = {};
  for (int tile = 0; tile < tiles; ++tile) {
    cp_async_wait<STAGES - 2>();  // this thread's copies of `tile` have landed
    if (async_mask_a) mask_own_copies<ATiles, VEC>(As[tile % STAGES], Ms[tile % STAGES]);
    if (async_mask_b) mask_own_copies<BTiles, VEC>(Bs[tile % STAGES], Ms[tile % STAGES]);
    __syncthreads();  // everyone's have (masked); everyone is done with tile - 1
    if (tile + STAGES - 1 < tiles) load(tile + STAGES - 1);
    cp_async_commit();
    const float* a_s = As[tile % STAGES];
    const float* b_s = Bs[tile % STAGES];
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      uint32_t a_big[MI][4], a_small[MI][4], b_big[NI][2], b_small[NI][2];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int r = 0; r < 4; ++r)
          to_tf32<SPLIT>(a_at<L, TA>(a_s, wm0 + mi * 16 + g + 8 * (r % 2), kk + t + 4 * (r / 2)),
                         a_big[mi][r], a_small[mi][r]);
#pragma unroll
      for (int ni = 0; ni < NI; ++ni)
#pragma unroll
        for (int r = 0; r < 2; ++r)
          to_tf32<SPLIT>(b_at<L, TB>(b_s, kk + t + 4 * r, wn0 + ni * 8 + g), b_big[ni][r],
                         b_small[ni][r]);
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
          if constexpr (SPLIT) {  // the small terms first, so the big one adds to their sum
            mma_tf32_16x8x8(acc[mi][ni], a_small[mi], b_big[ni]);
            mma_tf32_16x8x8(acc[mi][ni], a_big[mi], b_small[ni]);
          }
          mma_tf32_16x8x8(acc[mi][ni], a_big[mi], b_big[ni]);
        }
    }
  }

  // acc[mi][ni][r] is C(wm0 + 16 mi + g + 8 (r / 2), wn0 + 8 ni + 2 t + r % 2) of the block.
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int m = m0 + wm0 + mi * 16 + g + 8 * (r / 2);
        const int n = n0 + wn0 + ni * 8 + 2 * t + r % 2;
        if (m < p.M && n < p.N)
          store_one<EPI>(p, C, epi_rows, static_cast<int64_t>(m) * p.ldc + n, n,
                         acc[mi][ni][r]);
      }
}

// Launches the kernel for these arguments: 16-byte copies where float4_aligned(), else 4-byte.
template <class L, bool SPLIT, bool TA, bool TB, bool EPI, bool MASK>
void launch_layout(const char* name, const GemmArgs& args, cudaStream_t stream) {
  const dim3 grid(ceil_div(args.N, L::BN), ceil_div(args.M, L::BM));
  if (float4_aligned(args))
    launch(name, mma_kernel<L, SPLIT, TA, TB, EPI, MASK, 4>, grid, dim3(L::kThreads), args, stream);
  else
    launch(name, mma_kernel<L, SPLIT, TA, TB, EPI, MASK, 1>, grid, dim3(L::kThreads), args, stream);
}

// Every layout: transposes, the epilogue and the operand masks.
template <bool SPLIT, class L = DefaultTiling>
void run(const char* name, const GemmArgs& args, cudaStream_t stream) {
  with_transposes_epilogue_and_mask(args, [&](auto ta, auto tb, auto epi, auto mask) {
    launch_layout<L, SPLIT, decltype(ta)::value, decltype(tb)::value, decltype(epi)::value,
                  decltype(mask)::value>(name, args, stream);
  });
}

// Any alignment, the epilogue and the masks: only the grid's height limits it.
template <class L = DefaultTiling>
bool supports(const GemmArgs& a) { return grid_fits(a, L::BM); }

// Without operand masks (the epilogue, its output mask included, stays): half the kernels, for
// the tilings that only a benchmark or a forced choice runs (mma_tilings.h).
template <bool SPLIT, class L>
void run_without_masks(const char* name, const GemmArgs& args, cudaStream_t stream) {
  check(!args.has_mask(), name, ": this tiling has no kernel for operand masks");
  with_transposes_and_epilogue(args, [&](auto ta, auto tb, auto epi) {
    launch_layout<L, SPLIT, decltype(ta)::value, decltype(tb)::value, decltype(epi)::value,
                  false>(name, args, stream);
  });
}
template <class L>
bool supports_without_masks(const GemmArgs& a) { return !a.has_mask() && grid_fits(a, L::BM); }

}  // namespace tg::cuda::sgemm_detail::mma_pipeline
