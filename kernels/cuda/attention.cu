// CUDA fused causal attention, forward and backward (the CUDA twin of kernels/cpu/attention.cpp),
// for short sequences with the heads as an axis and q, k, v rows read through index tables:
//   forward:  S_ij = scale q_i . k_j (j <= T - Tq + i),  P = softmax_j(S),  z_i = sum_j P_ij v_j
//   backward: dP_ij = dz_i . v_j,  dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij')
//             dq_i = scale sum_j dS_ij k_j,  dk_j = scale sum_i dS_ij q_i,  dv_j = sum_i P_ij dz_i
//
// Two implementations of each direction, with the same arithmetic in the same order:
//
// One kernel (T <= 64, the head's rows fitting in 40 KB of shared memory, 8 KB when they can, so
// that more blocks share an SM; set_fused_attention in kernels/cuda/attention.h turns it off).
// One block per example b, all heads in turn, a warp per query up to 8 warps (for the smallest
// shapes, nanda's among them, one warp per example instead, 8 examples a block: Team, below):
// the block stages head h's key and value rows in shared memory (rows padded to an odd stride,
// so that 32 lanes reading one column of 32 rows hit 32 banks), then each warp takes queries
// i = w, w + W, ...
// Per example rather than per (b, h): with sum_heads, z_i is one running sum over the heads in
// order, as on the CPU, and the thread that owns z_i[e] owns it for every head, so it simply
// carries its sum on; per-(b, h) blocks would need a second pass to add the heads. The nanda
// shapes (B = 3830) still give thousands of blocks. The forward computes scores, mask, softmax
// and P v for a query in one warp (lane l holds keys l and l + 32) and writes z, each row's
// softmax statistics (maximum and sum: 2 numbers where the pattern has T) and the pattern only
// when it is asked for, for analysis. The backward stages K and V, computes the pattern's
// [Tq, T] block again from the queries, the staged keys and the statistics, then: dv (one
// thread per (j, e), from P), dS in place of P (one warp per query), dq and dk (one thread per
// output element), each written as the several kernels' are (below: into the table, or densely
// for index_add).
//
// One query of at most 32 keys (the step's last position) has a one-kernel path of its own: a
// block takes a few examples, a warp each (example, head)'s softmax (backward: P and dS) into
// shared memory, then a thread each output element, z summed over the heads in a register
// (single_query_forward_kernel, below).
//
// Several kernels (any T, and shared rows), with the pattern as scratch between them where it
// was not asked for (the backward first computes it again from the statistics, a thread per
// element). Softmax rows (forward) and dS rows (backward) take one warp per (b, h, i): lane l
// handles keys j = l, l + 32, ..., and a fixed xor-shuffle tree combines the lanes' maxima and
// their double sums (every lane ends with the same bits). Everything else is one thread per
// output element, summing over keys (z, dq) or queries (dk, dv) in increasing order, as the
// CPU does.
//
// Precision, in both, is the CPU's: dot products and the weighted sums of rows in T, the softmax
// denominator and sum_j P dP in double.
//
// Backward writes each example's gradients straight into the table rows when no row index
// repeats (dense q, k, v), found by the same device pass that range-checks the indices; where
// examples share rows (the first layer's (position, token) tables) it computes them densely,
// [B, Tq, H, Dh] and [B, T, H, Dh | Dv], and sums them into the tables with index_add, which adds
// in index order. The single-query kernel, where the sorted scatter-add takes the sums, writes
// its dk and dv only as weights (scale dS and P, [B T, H]) of the q and dz rows they multiply,
// and the scatter-add forms the products as it reads them: the same bits, without the dense
// buffers (kernels/cuda/index_add_sorted.h). No floating-point atomics: the results do not
// depend on timing or grid size.
#include "kernels/attention_layout.h"
#include "kernels/attention_outputs.h"
#include "kernels/cuda/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/index_add_sorted.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/warp.cuh"
#include "kernels/dispatch.h"

namespace tg::cuda {

namespace {

constexpr unsigned long long kNone = ~0ull;  // "no position" in the row checks' flags

// Where each operand lives (shared with the other backend's attention).
using Layout = AttentionLayout;

template <typename T>
__device__ T dot(const T* a, const T* b, int64_t n) {
  T sum = 0;
  for (int64_t d = 0; d < n; ++d) sum += a[d] * b[d];
  return sum;
}

// P_ij from the scaled score and its row's statistics (maximum, sum): the one formula of the
// forward and of the backward's recomputation, as the CPU's.
template <typename T>
__device__ T probability(T score, T peak, T total) {
  return static_cast<T>(::exp(static_cast<double>(score - peak)) / static_cast<double>(total));
}

// Each warp visits its pattern rows `row` = (b * H + h) * Tq + i; all lanes of a warp see the
// same row, so the shuffles always have the full warp.
#define TG_FOR_EACH_WARP_ROW(row, rows)                                                      \
  const int lane = static_cast<int>(threadIdx.x) % kWarp;                                    \
  for (int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;  \
       row < (rows); row += static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp)

// Forward, first half: pattern row (b, h, i) = softmax of the scaled scores over keys
// j <= last, 0 beyond, and the row's statistics. The scores are staged in the row itself; each
// lane rereads only its own.
template <typename T>
__global__ void softmax_rows_kernel(Layout at, const T* q, const T* k, T scale, T* stats,
                                    T* pattern, int64_t rows) {
  kernel_prologue();
  TG_FOR_EACH_WARP_ROW(row, rows) {
    const int64_t i = row % at.queries, bh = row / at.queries;
    const int64_t h = bh % at.heads, b = bh / at.heads;
    const int64_t last = at.last_key(i);
    const T* qi = q + at.q(b, i, h);
    T* p = pattern + row * at.keys;
    T peak = static_cast<T>(-HUGE_VAL);
    for (int64_t j = lane; j <= last; j += kWarp) {
      p[j] = scale * dot(qi, k + at.k(b, j, h), at.head_size);
      peak = p[j] > peak ? p[j] : peak;
    }
    // Subtract the maximum so exp never overflows; the row always keeps key 0.
    peak = warp_max(peak);
    double total = 0;
    for (int64_t j = lane; j <= last; j += kWarp) total += ::exp(static_cast<double>(p[j] - peak));
    total = warp_sum(total);
    const T total_t = static_cast<T>(total);  // rounded first, as the backward will read it
    if (lane == 0) {
      stats[row * 2] = peak;
      stats[row * 2 + 1] = total_t;
    }
    for (int64_t j = lane; j < at.keys; j += kWarp)
      p[j] = j <= last ? probability(p[j], peak, total_t) : T(0);
  }
}

// Backward's first step: the pattern again, one thread per element, from the scores and the
// forward's statistics.
template <typename T>
__global__ void pattern_from_stats_kernel(Layout at, const T* q, const T* k, T scale,
                                          const T* stats, T* pattern, int64_t n) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(idx, n) {
    const int64_t j = idx % at.keys, row = idx / at.keys;
    const int64_t i = row % at.queries, bh = row / at.queries;
    const int64_t h = bh % at.heads, b = bh / at.heads;
    if (j > at.last_key(i)) {
      pattern[idx] = T(0);
      continue;
    }
    const T score = scale * dot(q + at.q(b, i, h), k + at.k(b, j, h), at.head_size);
    pattern[idx] = probability(score, stats[row * 2], stats[row * 2 + 1]);
  }
}

// Forward, second half: one thread per element of z. Without sum_heads element (b, i, h, e);
// with it (b, i, e), summing the heads in order, each over its keys in order (as the CPU), then
// adding the residual row when there is one.
template <typename T>
__global__ void weighted_values_kernel(Layout at, const T* v, const T* residual,
                                       const T* pattern, T* z, int64_t n) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(idx, n) {
    const int64_t e = idx % at.value_size, r = idx / at.value_size;
    int64_t bi = r, h0 = 0, h1 = at.heads;
    if (!at.sum_heads) {
      bi = r / at.heads;
      h0 = r % at.heads;
      h1 = h0 + 1;
    }
    const int64_t i = bi % at.queries, b = bi / at.queries, last = at.last_key(i);
    T acc = 0;
    for (int64_t h = h0; h < h1; ++h) {
      const T* p = pattern + at.pattern_row(b, h, i);
      for (int64_t j = 0; j <= last; ++j) acc += p[j] * v[at.v(b, j, h) + e];
    }
    z[idx] = residual != nullptr ? acc + residual[at.q_rows[bi] * at.value_size + e] : acc;
  }
}

// Backward, first half: dS row (b, h, i), laid out as the pattern (0 where masked). dP_ij goes
// into the row first; each lane rereads only its own entries.
template <typename T>
__global__ void score_grad_kernel(Layout at, const T* dz, const T* v, const T* pattern, T* ds,
                                  int64_t rows) {
  kernel_prologue();
  TG_FOR_EACH_WARP_ROW(row, rows) {
    const int64_t i = row % at.queries, bh = row / at.queries;
    const int64_t h = bh % at.heads, b = bh / at.heads;
    const int64_t last = at.last_key(i);
    const T* p = pattern + row * at.keys;
    const T* dzi = dz + at.z(b, i, h);
    T* d = ds + row * at.keys;
    double weighted = 0;
    for (int64_t j = lane; j <= last; j += kWarp) {
      d[j] = dot(dzi, v + at.v(b, j, h), at.value_size);  // dP_ij
      weighted += static_cast<double>(p[j]) * d[j];
    }
    weighted = warp_sum(weighted);
    for (int64_t j = lane; j < at.keys; j += kWarp)
      d[j] = j <= last ? static_cast<T>(p[j] * (d[j] - weighted)) : T(0);
  }
}

#undef TG_FOR_EACH_WARP_ROW

// The table row that receives example row n's gradient: rows[n] when the rows are distinct (the
// gradient goes straight into the table), else n itself (a dense buffer for index_add).
__device__ inline int64_t destination(const int64_t* rows, int64_t n) {
  return rows != nullptr ? rows[n] : n;
}

// dq, one thread per (b, i, h, d): scale sum_j dS_ij k_j[d] over keys j in order.
template <typename T>
__global__ void query_grad_kernel(Layout at, const T* k, const T* ds, T scale,
                                  const int64_t* dest_rows, T* dq, int64_t n) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(idx, n) {
    const int64_t d = idx % at.head_size, r = idx / at.head_size;
    const int64_t h = r % at.heads, bi = r / at.heads;
    const int64_t i = bi % at.queries, b = bi / at.queries, last = at.last_key(i);
    const T* dsi = ds + at.pattern_row(b, h, i);
    T acc = 0;
    for (int64_t j = 0; j <= last; ++j) acc += (scale * dsi[j]) * k[at.k(b, j, h) + d];
    dq[(destination(dest_rows, bi) * at.heads + h) * at.head_size + d] = acc;
  }
}

// dk, one thread per (b, j, h, d): scale sum_i dS_ij q_i[d] over the queries that see key j.
template <typename T>
__global__ void key_grad_kernel(Layout at, const T* q, const T* ds, T scale,
                                const int64_t* dest_rows, T* dk, int64_t n) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(idx, n) {
    const int64_t d = idx % at.head_size, r = idx / at.head_size;
    const int64_t h = r % at.heads, bj = r / at.heads;
    const int64_t j = bj % at.keys, b = bj / at.keys;
    T acc = 0;
    for (int64_t i = at.first_query(j); i < at.queries; ++i)
      acc += (scale * ds[at.pattern_row(b, h, i) + j]) * q[at.q(b, i, h) + d];
    dk[(destination(dest_rows, bj) * at.heads + h) * at.head_size + d] = acc;
  }
}

// dv, one thread per (b, j, h, e): sum_i P_ij dz_i[e] over the queries that see key j.
template <typename T>
__global__ void value_grad_kernel(Layout at, const T* dz, const T* pattern,
                                  const int64_t* dest_rows, T* dv, int64_t n) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(idx, n) {
    const int64_t e = idx % at.value_size, r = idx / at.value_size;
    const int64_t h = r % at.heads, bj = r / at.heads;
    const int64_t j = bj % at.keys, b = bj / at.keys;
    T acc = 0;
    for (int64_t i = at.first_query(j); i < at.queries; ++i)
      acc += pattern[at.pattern_row(b, h, i) + j] * dz[at.z(b, i, h) + e];
    dv[(destination(dest_rows, bj) * at.heads + h) * at.value_size + e] = acc;
  }
}

// ---- the one-kernel paths, T <= 64 -------------------------------------------------------------

constexpr int64_t kFusedMaxKeys = 2 * kWarp;  // T: each lane holds keys l and l + 32
constexpr int kFusedMaxWarps = 8;             // per block; fewer when there are fewer queries
// A head's staged rows live in a static shared array of one of three sizes: for the smallest
// shapes (nanda's T = 3: a few hundred elements) a slice of 2 KB for each of a block's
// kFusedMaxWarps warps, each warp an example (FusedStage::PerWarp, below); for small shapes one
// 8 KB array per block, which leaves room for many blocks per SM; the large one for longer rows
// (one or two blocks' worth of an SM's shared memory).
constexpr int64_t kWarpStageBytes = 2 * 1024;
constexpr int64_t kSmallStageBytes = 8 * 1024;
constexpr int64_t kStageBytes = 40 * 1024;
constexpr int64_t kPerWarpMaxQueries = 4;  // one warp takes an example's queries in turn

// Elements of T in a staging area of `Bytes`.
template <typename T, int64_t Bytes>
struct Stage {
  static constexpr int64_t elements = Bytes / static_cast<int64_t>(sizeof(T));
};

// Row stride in shared memory: odd, so that the 32 lanes reading one column of 32 rows (a lane
// per key) meet 32 different banks.
__host__ __device__ inline int64_t padded(int64_t width) { return width | 1; }

// Elements staged per head: key and value rows [T, Dh | Dv] and, for the backward, the
// pattern's [Tq, T] block (P, then dS in its place).
__host__ __device__ inline int64_t staged_elements(int64_t keys, int64_t queries,
                                                   int64_t head_size, int64_t value_size,
                                                   bool backward) {
  return keys * (padded(head_size) + padded(value_size)) + (backward ? queries * keys : 0);
}

// How the one-kernel paths lay a shape out: an example per warp with its rows in the warp's
// 2 KB slice (PerWarp), or an example per block with its rows in the block's 8 KB (Small) or
// 40 KB (Large) array.
enum class FusedStage { PerWarp, Small, Large };

template <typename T>
FusedStage fused_stage(const Layout& at, bool backward) {
  const int64_t staged =
      staged_elements(at.keys, at.queries, at.head_size, at.value_size, backward);
  if (at.queries <= kPerWarpMaxQueries &&
      staged <= kWarpStageBytes / static_cast<int64_t>(sizeof(T)))
    return FusedStage::PerWarp;
  return staged <= Stage<T, kSmallStageBytes>::elements ? FusedStage::Small : FusedStage::Large;
}

// Threads per block: kFusedMaxWarps warps of an example each, or a warp per query, at most
// kFusedMaxWarps.
int fused_block_threads(FusedStage stage, int64_t queries) {
  if (stage == FusedStage::PerWarp) return kWarp * kFusedMaxWarps;
  return kWarp * static_cast<int>(std::clamp<int64_t>(queries, 1, kFusedMaxWarps));
}

// Calls f(staging bytes, per warp), each a std::integral_constant, for the stage: the one-kernel
// paths' template arguments.
template <typename F>
void with_fused_stage(FusedStage stage, F&& f) {
  switch (stage) {
    case FusedStage::PerWarp:
      return f(std::integral_constant<int64_t, kWarpStageBytes * kFusedMaxWarps>{},
               std::true_type{});
    case FusedStage::Small:
      return f(std::integral_constant<int64_t, kSmallStageBytes>{}, std::false_type{});
    case FusedStage::Large:
      return f(std::integral_constant<int64_t, kStageBytes>{}, std::false_type{});
  }
}

// Blocks: enough for one example per warp or per block, capped (each warp or block then loops
// over examples b, b + all warps or blocks, ...).
unsigned fused_grid(FusedStage stage, int64_t batch) {
  const int64_t per_block = stage == FusedStage::PerWarp ? kFusedMaxWarps : 1;
  return static_cast<unsigned>(
      std::clamp<int64_t>((batch + per_block - 1) / per_block, 1, int64_t{1} << 16));
}

// The threads that share one example in the one-kernel paths: the whole block, a warp per query;
// or, PerWarp, one warp that takes the example's queries in turn while the block's other warps
// take other examples. (With nanda's shapes, one query of 3 keys, a block per example was one
// warp, and an SM holds at most 32 blocks: on the H200 the forward ran at 27% occupancy.)
// The arithmetic is the same either way; only who does it, and which barrier, differ.
template <bool PerWarp>
struct Team {
  int rank, size;                      // this thread's place in the team; the team's threads
  int64_t query0, query_step;          // the queries this thread's warp takes
  int64_t first_example, example_step;  // the examples this team takes
  int slice;                           // which of the block's staging slices is the team's

  __device__ Team() {
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int warps = static_cast<int>(blockDim.x) / kWarp;
    if constexpr (PerWarp) {
      rank = static_cast<int>(threadIdx.x) % kWarp, size = kWarp;
      query0 = 0, query_step = 1;
      first_example = static_cast<int64_t>(blockIdx.x) * warps + warp;
      example_step = static_cast<int64_t>(gridDim.x) * warps;
      slice = warp;
    } else {
      rank = static_cast<int>(threadIdx.x), size = static_cast<int>(blockDim.x);
      query0 = warp, query_step = warps;
      first_example = blockIdx.x, example_step = gridDim.x;
      slice = 0;
    }
  }
  __device__ static void sync() {
    if constexpr (PerWarp) {
      __syncwarp();
    } else {
      __syncthreads();
    }
  }
};

// The team's part of a block's staging array of `Elements`: all of it, or a warp's slice.
template <bool PerWarp, typename T>
__device__ T* team_stage(T* stage, int64_t elements, const Team<PerWarp>& team) {
  return PerWarp ? stage + team.slice * (elements / kFusedMaxWarps) : stage;
}

// The one-kernel paths index a head's staged rows with int: they hold at most 40 KB. nvcc
// compiles an int64 division as a test of both operands' high words, then a 32-bit division or
// a subroutine of dozens of instructions; with int there is only the 32-bit division, per
// element staged or computed.

// Copies head h's key and value rows of example b into shared memory, [T, padded(Dh | Dv)], by
// the `size` threads of a team (`rank` this thread's place).
template <typename T>
__device__ void stage_keys_values(const Layout& at, int64_t b, int64_t h, const T* k, const T* v,
                                  T* k_s, T* v_s, int rank, int size) {
  const int nt = static_cast<int>(at.keys), dh = static_cast<int>(at.head_size),
            dvs = static_cast<int>(at.value_size);
  const int ks = static_cast<int>(padded(dh)), vs = static_cast<int>(padded(dvs));
  for (int n = rank; n < nt * dh; n += size) {
    const int j = n / dh, d = n % dh;
    k_s[j * ks + d] = k[at.k(b, j, h) + d];
  }
  for (int n = rank; n < nt * dvs; n += size) {
    const int j = n / dvs, e = n % dvs;
    v_s[j * vs + e] = v[at.v(b, j, h) + e];
  }
}

// The whole forward: per example, per head in order, each warp's queries. Writes z (with
// sum_heads, each thread adds head h to the sum it wrote for heads 0..h-1, and after the last
// head the residual row, when there is one), the rows' statistics and, when asked for (not
// null), the pattern.
template <typename T, int64_t StageBytes, bool PerWarp>
__global__ void fused_forward_kernel(Layout at, const T* q, const T* k, const T* v,
                                     const T* residual, T scale, T* z, T* stats, T* pattern) {
  kernel_prologue();
  __shared__ T stage[Stage<T, StageBytes>::elements];
  __shared__ T probs[kFusedMaxWarps][kFusedMaxKeys];  // each warp's current P row
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const Team<PerWarp> team;
  const int64_t ks = padded(at.head_size), vs = padded(at.value_size);
  T* k_s = team_stage(stage, Stage<T, StageBytes>::elements, team);
  T* v_s = k_s + at.keys * ks;
  T* p_w = probs[warp];
  for (int64_t b = team.first_example; b < at.batch; b += team.example_step) {
    for (int64_t h = 0; h < at.heads; ++h) {
      stage_keys_values(at, b, h, k, v, k_s, v_s, team.rank, team.size);
      team.sync();
      for (int64_t i = team.query0; i < at.queries; i += team.query_step) {  // same i, all lanes
        const int64_t last = at.last_key(i);
        const T* qi = q + at.q(b, i, h);
        T score[2] = {0, 0};
        T peak = static_cast<T>(-HUGE_VAL);
        for (int c = 0; c < 2; ++c) {
          const int64_t j = lane + c * kWarp;
          if (j > last) continue;
          score[c] = scale * dot(qi, k_s + j * ks, at.head_size);
          peak = score[c] > peak ? score[c] : peak;
        }
        // Subtract the maximum so exp never overflows; the row always keeps key 0.
        peak = warp_max(peak);
        double ex[2] = {0, 0}, total = 0;
        for (int c = 0; c < 2; ++c) {
          if (lane + c * kWarp > last) continue;
          ex[c] = ::exp(static_cast<double>(score[c] - peak));
          total += ex[c];
        }
        total = warp_sum(total);
        const T total_t = static_cast<T>(total);  // rounded first, as the backward reads it
        if (lane == 0) {
          stats[at.stats_row(b, h, i)] = peak;
          stats[at.stats_row(b, h, i) + 1] = total_t;
        }
        for (int c = 0; c < 2; ++c) {
          const int64_t j = lane + c * kWarp;
          if (j >= at.keys) continue;
          // ex[c] is probability()'s exp, here already at hand
          p_w[j] = j <= last ? static_cast<T>(ex[c] / static_cast<double>(total_t)) : T(0);
          if (pattern != nullptr) pattern[at.pattern_row(b, h, i) + j] = p_w[j];
        }
        __syncwarp();  // the row is in p_w
        for (int64_t e = lane; e < at.value_size; e += kWarp) {
          T* zi = z + at.z(b, i, h) + e;
          T acc = at.sum_heads && h > 0 ? *zi : T(0);
          for (int64_t j = 0; j <= last; ++j) acc += p_w[j] * v_s[j * vs + e];
          if (residual != nullptr && h + 1 == at.heads)  // as x + attention(x), afterwards
            acc = acc + residual[at.q_rows[b * at.queries + i] * at.value_size + e];
          *zi = acc;
        }
        __syncwarp();  // read before the warp's next query overwrites it
      }
      team.sync();  // before the next head's rows replace these
    }
  }
}

// The whole backward: per example, per head in order, P again from the scores and the forward's
// statistics; dv from P; dS in place of P; then dq and dk. Example row n's gradients go to row
// destination(q_dest | kv_dest, n): the table row itself when the rows are distinct, else row n
// of a dense buffer that index_add then sums.
template <typename T, int64_t StageBytes, bool PerWarp>
__global__ void fused_backward_kernel(Layout at, const T* dz, const T* q, const T* k, const T* v,
                                      const T* stats, T scale, const int64_t* q_dest,
                                      const int64_t* kv_dest, T* dq, T* dk, T* dv) {
  kernel_prologue();
  __shared__ T stage[Stage<T, StageBytes>::elements];
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const Team<PerWarp> team;
  const int dh = static_cast<int>(at.head_size), dvs = static_cast<int>(at.value_size),
            nt = static_cast<int>(at.keys), nq = static_cast<int>(at.queries);
  const int ks = static_cast<int>(padded(dh)), vs = static_cast<int>(padded(dvs));
  T* k_s = team_stage(stage, Stage<T, StageBytes>::elements, team);
  T* v_s = k_s + nt * ks;
  T* ps = v_s + nt * vs;  // [Tq, T]: P, then dS
  for (int64_t b = team.first_example; b < at.batch; b += team.example_step) {
    for (int64_t h = 0; h < at.heads; ++h) {
      stage_keys_values(at, b, h, k, v, k_s, v_s, team.rank, team.size);
      team.sync();

      // P row i, one warp, as the forward computed it (the same scores from the same rows).
      for (int64_t i = team.query0; i < nq; i += team.query_step) {
        const int64_t last = at.last_key(i);
        const T* qi = q + at.q(b, i, h);
        const T* row_stats = stats + at.stats_row(b, h, i);
        for (int64_t j = lane; j < nt; j += kWarp)
          ps[i * nt + j] = j <= last ? probability(scale * dot(qi, k_s + j * ks, dh), row_stats[0],
                                                   row_stats[1])
                                     : T(0);
      }
      team.sync();

      // dv_j[e] = sum_i P_ij dz_i[e] over the queries that see key j, in order.
      for (int n = team.rank; n < nt * dvs; n += team.size) {
        const int j = n / dvs, e = n % dvs;
        T acc = 0;
        for (int64_t i = at.first_query(j); i < nq; ++i)
          acc += ps[i * nt + j] * dz[at.z(b, i, h) + e];
        dv[(destination(kv_dest, b * nt + j) * at.heads + h) * dvs + e] = acc;
      }
      team.sync();  // P is read; dS replaces it

      // dS row i, one warp: dP_ij into registers, then P_ij (dP_ij - sum_j' P_ij' dP_ij').
      for (int64_t i = team.query0; i < nq; i += team.query_step) {
        const int64_t last = at.last_key(i);
        const T* dzi = dz + at.z(b, i, h);
        T* row = ps + i * nt;
        T dp[2] = {0, 0};
        double weighted = 0;
        for (int c = 0; c < 2; ++c) {
          const int64_t j = lane + c * kWarp;
          if (j > last) continue;
          dp[c] = dot(dzi, v_s + j * vs, dvs);
          weighted += static_cast<double>(row[j]) * dp[c];
        }
        weighted = warp_sum(weighted);
        for (int c = 0; c < 2; ++c) {
          const int64_t j = lane + c * kWarp;
          if (j <= last) row[j] = static_cast<T>(row[j] * (dp[c] - weighted));
        }
      }
      team.sync();

      // dq_i[d] = scale sum_j dS_ij k_j[d] over keys j <= last, then dk_j[d] = scale sum_i
      // dS_ij q_i[d] over the queries that see key j, both in order; one thread per element.
      for (int n = team.rank; n < (nq + nt) * dh; n += team.size) {
        const int d = n % dh;
        T acc = 0;
        if (n < nq * dh) {
          const int i = n / dh;
          const int64_t last = at.last_key(i);
          for (int64_t j = 0; j <= last; ++j) acc += (scale * ps[i * nt + j]) * k_s[j * ks + d];
          dq[(destination(q_dest, b * nq + i) * at.heads + h) * dh + d] = acc;
        } else {
          const int j = n / dh - nq;
          for (int64_t i = at.first_query(j); i < nq; ++i)
            acc += (scale * ps[i * nt + j]) * q[at.q(b, i, h) + d];
          dk[(destination(kv_dest, b * nt + j) * at.heads + h) * dh + d] = acc;
        }
      }
      team.sync();  // before the next head's rows replace these
    }
  }
}

// ---- the one-kernel paths for one query, T <= 32 ------------------------------------------------

// One query per example (a transformer's last position: the step's fast path) leaves the team
// kernels above little to share: a warp went through an example's heads in turn, each head a few
// dependent trips to memory, and z went back and forth through global memory between heads.
// Here a block takes kSingleQueryWarps / H examples (at least 1) in two phases:
//   A: a warp per (example, head), lane j key j: the scores, softmax and statistics (backward:
//      P again, and dS), into shared memory;
//   B: every output element a thread, all heads of an example at once, z summed over the heads
//      in a register.
// The arithmetic is the team kernels', expression for expression and in the same order.
constexpr int kSingleQueryWarps = 8;
constexpr int kSingleQueryMaxKeys = kWarp;   // a lane per key
constexpr int kSingleQueryMaxPairs = kWarp;  // (example, head) pairs a block holds
constexpr int kSingleQueryLoads = 8;         // value rows' loads in flight per output element

__host__ __device__ inline int single_query_examples(int64_t heads) {
  return heads >= kSingleQueryWarps ? 1 : kSingleQueryWarps / static_cast<int>(heads);
}

// (The kernels index a block's outputs with int: at most T H (Dh + Dv) + H Dh per example.)
bool single_query_fits(const Layout& at) {
  return at.queries == 1 && at.keys <= kSingleQueryMaxKeys && at.heads >= 1 &&
         at.heads <= kSingleQueryMaxPairs &&
         single_query_examples(at.heads) * (at.keys + 1) * at.heads *
                 (at.head_size + at.value_size) <
             (int64_t{1} << 30);
}

unsigned single_query_grid(const Layout& at) {
  const int64_t per_block = single_query_examples(at.heads);
  return static_cast<unsigned>(
      std::clamp<int64_t>((at.batch + per_block - 1) / per_block, 1, int64_t{1} << 16));
}

// The table rows of a block's examples, staged in phase A for phase B: its value (and key) rows
// are then one load away, not two.
struct RowsOfExamples {
  int64_t key[kSingleQueryWarps][kSingleQueryMaxKeys];  // [g][j]
  int64_t query[kSingleQueryWarps];                     // [g]
  // By the warp of example b's head 0, which is the block's g-th example.
  __device__ void stage(const Layout& at, int64_t b, int g, int lane) {
    if (lane < at.keys) key[g][lane] = at.kv_rows[b * at.keys + lane];
    if (lane == 0) query[g] = at.q_rows[b];
  }
};

// Phase A of both directions for pair (g, h), lane `lane` (key j = lane): the scaled score of
// key j, or nothing (false) beyond the last key.
template <typename T>
__device__ bool single_query_score(const Layout& at, int64_t b, int64_t h, int lane,
                                   const T* q, const T* k, T scale, T& score) {
  if (lane >= at.keys) return false;
  score = scale * dot(q + at.q(b, 0, h), k + at.k(b, lane, h), at.head_size);
  return true;
}

template <typename T>
__global__ void __launch_bounds__(kSingleQueryWarps * kWarp)
    single_query_forward_kernel(Layout at, const T* q, const T* k, const T* v,
                                const T* residual, T scale, T* z, T* stats, T* pattern) {
  kernel_prologue();
  __shared__ T probs[kSingleQueryMaxPairs][kSingleQueryMaxKeys];  // [g * H + h][j]
  __shared__ RowsOfExamples rows;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int group = single_query_examples(at.heads);
  const int heads = static_cast<int>(at.heads), nt = static_cast<int>(at.keys);
  const int dvs = static_cast<int>(at.value_size);
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * group; first < at.batch;
       first += static_cast<int64_t>(gridDim.x) * group) {
    const int examples = static_cast<int>(at.batch - first < group ? at.batch - first : group);
    for (int pair = warp; pair < examples * heads; pair += kSingleQueryWarps) {  // A
      const int64_t b = first + pair / heads, h = pair % heads;
      if (h == 0) rows.stage(at, b, pair / heads, lane);
      T score = 0;
      const bool key = single_query_score(at, b, h, lane, q, k, scale, score);
      // Subtract the maximum so exp never overflows; the row always keeps key 0. (A NaN score
      // counts as -inf here, as in the team kernel's running maximum.)
      const T lowest = static_cast<T>(-HUGE_VAL);
      const T peak = warp_max(key && score > lowest ? score : lowest);
      const double ex = key ? ::exp(static_cast<double>(score - peak)) : 0;
      const double total = warp_sum(ex);
      const T total_t = static_cast<T>(total);  // rounded first, as the backward reads it
      if (lane == 0) {
        stats[at.stats_row(b, h, 0)] = peak;
        stats[at.stats_row(b, h, 0) + 1] = total_t;
      }
      if (key) {
        const T p = static_cast<T>(ex / static_cast<double>(total_t));
        probs[pair][lane] = p;
        if (pattern != nullptr) pattern[at.pattern_row(b, h, 0) + lane] = p;
      }
    }
    __syncthreads();
    const int per_example = at.sum_heads ? dvs : heads * dvs;
    for (int n = static_cast<int>(threadIdx.x); n < examples * per_example;
         n += static_cast<int>(blockDim.x)) {
      const int g = n / per_example, e = n % dvs;
      const int64_t b = first + g;
      const int h0 = at.sum_heads ? 0 : n % per_example / dvs;
      const int h1 = at.sum_heads ? heads : h0 + 1;
      // Head by head, key by key, as the team kernel's running sum: terms t = (h - h0) T + j.
      T acc = 0;
      const int terms = (h1 - h0) * nt;
      for (int t0 = 0; t0 < terms; t0 += kSingleQueryLoads) {
        T value[kSingleQueryLoads];  // independent loads in flight together; the adds in order
#pragma unroll
        for (int u = 0; u < kSingleQueryLoads; ++u) {
          const int t = t0 + u, h = h0 + t / nt;
          value[u] = t < terms ? v[(rows.key[g][t % nt] * heads + h) * dvs + e] : T(0);
        }
#pragma unroll
        for (int u = 0; u < kSingleQueryLoads; ++u) {
          const int t = t0 + u;
          if (t < terms) acc += probs[g * heads + h0 + t / nt][t % nt] * value[u];
        }
      }
      if (residual != nullptr)  // as x + attention(x), afterwards
        acc = acc + residual[rows.query[g] * at.value_size + e];
      z[at.z(b, 0, h0) + e] = acc;
    }
    __syncthreads();  // before the next examples' rows replace these
  }
}

template <typename T>
__global__ void __launch_bounds__(kSingleQueryWarps * kWarp)
    single_query_backward_kernel(Layout at, const T* dz, const T* q, const T* k, const T* v,
                                 const T* stats, T scale, const int64_t* q_dest,
                                 const int64_t* kv_dest, T* dq, T* dk, T* dv, T* k_weights,
                                 T* v_weights) {
  kernel_prologue();
  __shared__ T probs[kSingleQueryMaxPairs][kSingleQueryMaxKeys];  // [g * H + h][j]
  __shared__ T score_grads[kSingleQueryMaxPairs][kSingleQueryMaxKeys];  // dS, likewise
  const bool as_weights = v_weights != nullptr;  // dk, dv as rows' weights (index_add_sorted.h)
  __shared__ RowsOfExamples rows;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int group = single_query_examples(at.heads);
  const int heads = static_cast<int>(at.heads), nt = static_cast<int>(at.keys);
  const int dh = static_cast<int>(at.head_size), dvs = static_cast<int>(at.value_size);
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * group; first < at.batch;
       first += static_cast<int64_t>(gridDim.x) * group) {
    const int examples = static_cast<int>(at.batch - first < group ? at.batch - first : group);
    for (int pair = warp; pair < examples * heads; pair += kSingleQueryWarps) {  // A
      const int64_t b = first + pair / heads, h = pair % heads;
      if (h == 0) rows.stage(at, b, pair / heads, lane);
      T score = 0, p = 0, dp = 0;
      const bool key = single_query_score(at, b, h, lane, q, k, scale, score);
      double weighted = 0;
      if (key) {
        const T* row_stats = stats + at.stats_row(b, h, 0);
        p = probability(score, row_stats[0], row_stats[1]);
        dp = dot(dz + at.z(b, 0, h), v + at.v(b, lane, h), at.value_size);
        weighted += static_cast<double>(p) * dp;
      }
      weighted = warp_sum(weighted);
      if (key) {
        probs[pair][lane] = p;
        const T ds = static_cast<T>(p * (dp - weighted));
        score_grads[pair][lane] = ds;
        if (as_weights) {  // dv_j's weight P_j (of dz) and dk_j's scale dS_j (of q)
          v_weights[(b * nt + lane) * heads + h] = p;
          k_weights[(b * nt + lane) * heads + h] = scale * ds;
        }
      }
    }
    __syncthreads();
    // B: dv_j = P_j dz, dq = scale sum_j dS_j k_j, dk_j = scale dS_j q, an element a thread (dq
    // alone when dk and dv went out as weights).
    const int nv = as_weights ? 0 : nt * heads * dvs, nq = heads * dh,
              nk = as_weights ? 0 : nt * heads * dh;
    for (int n = static_cast<int>(threadIdx.x); n < examples * (nv + nq + nk);
         n += static_cast<int>(blockDim.x)) {
      const int g = n / (nv + nq + nk);
      int m = n % (nv + nq + nk);
      const int64_t b = first + g;
      T acc = 0;
      if (m < nv) {
        const int j = m / (heads * dvs), h = m / dvs % heads, e = m % dvs;
        acc += probs[g * heads + h][j] * dz[at.z(b, 0, h) + e];
        dv[(destination(kv_dest, b * nt + j) * at.heads + h) * dvs + e] = acc;
      } else if ((m -= nv) < nq) {
        const int h = m / dh, d = m % dh;
        for (int j = 0; j < nt; ++j)
          acc += (scale * score_grads[g * heads + h][j]) * k[(rows.key[g][j] * heads + h) * dh + d];
        dq[(destination(q_dest, b) * at.heads + h) * dh + d] = acc;
      } else {
        m -= nq;
        const int j = m / (heads * dh), h = m / dh % heads, d = m % dh;
        acc += (scale * score_grads[g * heads + h][j]) * q[(rows.query[g] * heads + h) * dh + d];
        dk[(destination(kv_dest, b * nt + j) * at.heads + h) * dh + d] = acc;
      }
    }
    __syncthreads();  // before the next examples' rows replace these
  }
}

std::atomic<bool> fused_enabled{true};
std::atomic<bool> weighted_rows_enabled{true};

// Range check of n row indices against a table of table_rows rows: the first bad position goes
// to *first_bad. With `seen` ([table_rows], all kNone on entry), also whether a row repeats:
// *repeat then gets some position whose row an earlier-arriving thread had already claimed (which
// one depends on timing; only whether there is one is used).
__global__ void check_rows_kernel(const int64_t* rows, int64_t n, int64_t table_rows,
                                  unsigned long long* first_bad, unsigned long long* seen,
                                  unsigned long long* repeat) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(pos, n) {
    const int64_t r = rows[pos];
    const auto p = static_cast<unsigned long long>(pos);
    if (r < 0 || r >= table_rows) atomicMin(first_bad, p);
    else if (seen != nullptr && atomicMin(seen + r, p) != kNone) atomicMin(repeat, p);
  }
}

// Whether each index table's rows are all distinct (asked for only by the backward).
struct RowsDistinct {
  bool q = false, kv = false;
};

// Checks q_rows and kv_rows on the device with the CPU's messages, in its order (queries first);
// with `find_repeats`, also says whether each has distinct rows. One copy back to the host.
RowsDistinct check_rows(CudaBackend& backend, const char* op, const Tensor& q_rows,
                        int64_t q_table_rows, const Tensor& kv_rows, int64_t kv_table_rows,
                        bool find_repeats) {
  // No flags can come back while capturing a graph: the eager run checked these rows, and rows
  // taken as repeating give the backward's path that is right for any rows.
  if (is_capturing(backend.index())) return {false, false};
  const Device device = backend.device();
  // [first bad query position, first bad key position, a repeated query, a repeated key]
  const Tensor flags = Tensor::empty({4}, DType::Int64, device);
  backend.fill(flags, -1);  // all bits set: kNone
  Tensor seen;
  if (find_repeats) {
    seen = Tensor::empty({q_table_rows + kv_table_rows}, DType::Int64, device);
    backend.fill(seen, -1);
  }
  auto* f = static_cast<unsigned long long*>(flags.raw_data());
  auto* s = find_repeats ? static_cast<unsigned long long*>(seen.raw_data()) : nullptr;
  {
    DeviceGuard guard(backend.index());
    cudaStream_t stream = current_stream(backend.index());
    if (q_rows.numel() > 0)
      launch(check_rows_kernel, grid_for(q_rows.numel()), kBlockThreads, stream,
             q_rows.data<int64_t>(), q_rows.numel(), q_table_rows, f, s, f + 2);
    if (kv_rows.numel() > 0)
      launch(check_rows_kernel, grid_for(kv_rows.numel()), kBlockThreads, stream,
             kv_rows.data<int64_t>(), kv_rows.numel(), kv_table_rows, f + 1,
             s != nullptr ? s + q_table_rows : nullptr, f + 3);
  }
  unsigned long long host[4];
  backend.copy_to_host(flags, host);  // waits for the stream
  const struct {
    const Tensor& rows;
    int64_t table_rows;
    const char* which;
  } tables[] = {{q_rows, q_table_rows, "query row"}, {kv_rows, kv_table_rows, "key row"}};
  for (int t = 0; t < 2; ++t) {
    if (host[t] == kNone) continue;
    const auto pos = static_cast<int64_t>(host[t]);
    const int64_t value = tables[t].rows.to_vector<int64_t>()[pos];  // the error path only
    throw Error(cat(op, ": ", tables[t].which, " ", value, " at position ", pos,
                    " is outside the table's ", tables[t].table_rows, " rows"));
  }
  return {host[2] == kNone, host[3] == kNone};
}

// The one-query backward where key rows repeat and the sorted scatter-add takes every sum: dk
// and dv go out as weights, scale dS and P ([B T, H] each), of the query's q and dz rows, which
// the scatter-add multiplies as it reads them: the dense [B, T, H, Dh | Dv] buffers (23.5 MB for
// nanda's value table) are neither written nor read again, and the sums are those buffers' bits
// (index_add_sorted.h; its partial sums are still allocated at that size, [n, width], but a
// run writes only its first row in each tile of 64). dq arrives as the backward's target for
// it: the zeroed table where q_dest gives distinct rows, else a dense buffer, summed here like
// the residual's dz.
template <typename T>
void single_query_backward_as_weights(const Layout& at, cudaStream_t stream, T scale,
                                      const Tensor& dz, const Tensor& q, const Tensor& k,
                                      const Tensor& v, const Tensor& stats, const Tensor& q_rows,
                                      const Tensor& kv_rows, const int64_t* q_dest,
                                      const Tensor& residual, Tensor& dq, Tensor& dk, Tensor& dv,
                                      Tensor& dresidual) {
  const Device device = q.device();
  const Tensor k_weights = Tensor::empty({at.batch * at.keys, at.heads}, q.dtype(), device);
  const Tensor v_weights = Tensor::empty({at.batch * at.keys, at.heads}, q.dtype(), device);
  launch(single_query_backward_kernel<T>, single_query_grid(at), kSingleQueryWarps * kWarp,
         stream, at, dz.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), stats.data<T>(), scale,
         q_dest, nullptr, dq.data<T>(), nullptr, nullptr, k_weights.data<T>(),
         v_weights.data<T>());
  // Each sum's output: the table's rows, then the dense shape's dimensions past the indices'.
  const auto sum_into = [&](const Tensor& table, Shape dense_shape, const Tensor& rows) {
    dense_shape.erase(dense_shape.begin(), dense_shape.begin() + rows.dim());
    dense_shape.insert(dense_shape.begin(), table.size(0));
    return Tensor::empty(dense_shape, q.dtype(), device);
  };
  std::vector<SortedScatterAdd> sums;
  if (q_dest == nullptr) {
    sums.push_back({dq, q_rows, sum_into(q, dq.shape(), q_rows), q.size(0)});
    dq = sums.back().out;
  }
  dk = sum_into(k, {at.batch, at.keys, at.heads, at.head_size}, kv_rows);
  sums.push_back({Tensor(), kv_rows, dk, k.size(0),
                  {k_weights, q, q_rows, at.keys, at.heads, at.head_size,
                   at.heads * at.head_size, at.head_size}});
  dv = sum_into(v, {at.batch, at.keys, at.heads, at.value_size}, kv_rows);
  sums.push_back({Tensor(), kv_rows, dv, v.size(0),
                  {v_weights, dz, Tensor(), at.keys, at.heads, at.value_size,
                   at.sum_heads ? at.value_size : at.heads * at.value_size,
                   at.sum_heads ? 0 : at.value_size}});
  if (residual.defined()) {
    dresidual = sum_into(residual, dz.shape(), q_rows);
    sums.push_back({dz, q_rows, dresidual, residual.size(0)});
  }
  sorted_index_add(sums, stream);
}

}  // namespace

void set_fused_attention(bool enabled) { fused_enabled.store(enabled); }
bool fused_attention_enabled() { return fused_enabled.load(); }
void set_weighted_key_value_rows(bool enabled) { weighted_rows_enabled.store(enabled); }
bool weighted_key_value_rows_enabled() { return weighted_rows_enabled.load(); }

bool fused_attention_fits(int64_t keys, int64_t queries, int64_t head_size, int64_t value_size,
                          DType dtype, bool backward) {
  const int64_t capacity = kStageBytes / static_cast<int64_t>(dtype_size(dtype));
  return keys <= kFusedMaxKeys &&
         staged_elements(keys, queries, head_size, value_size, backward) <= capacity;
}

void CudaBackend::attention(const Tensor& q_table_in, const Tensor& k_table_in,
                            const Tensor& v_table_in, const Tensor& q_rows_in,
                            const Tensor& kv_rows_in, double scale, bool sum_heads,
                            const Tensor& residual_in, Tensor& z, Tensor& softmax_stats,
                            Tensor* pattern) {
  check_on(q_table_in, device(), "attention", "q_table");
  check_on(k_table_in, device(), "attention", "k_table");
  check_on(v_table_in, device(), "attention", "v_table");
  check_on(q_rows_in, device(), "attention", "q_rows");
  check_on(kv_rows_in, device(), "attention", "kv_rows");
  const Tensor q = contiguous_copy_if_needed(q_table_in), k = contiguous_copy_if_needed(k_table_in),
               v = contiguous_copy_if_needed(v_table_in);
  const Tensor q_rows = contiguous_copy_if_needed(q_rows_in),
               kv_rows = contiguous_copy_if_needed(kv_rows_in);
  if (residual_in.defined()) check_on(residual_in, device(), "attention", "residual");
  const Tensor residual =
      residual_in.defined() ? contiguous_copy_if_needed(residual_in) : Tensor();
  check_rows(*this, "attention", q_rows, q.size(0), kv_rows, k.size(0), false);
  const Layout at = attention_layout(q, v, q_rows, kv_rows, sum_heads);
  check_attention_residual("attention", residual, q, at);
  if (!make_attention_outputs(*this, at, q.dtype(), residual, q_rows, z, softmax_stats, pattern))
    return;
  dispatch_floating(q.dtype(), "attention", [&]<typename T>() {
    DeviceGuard guard(index_);
    cudaStream_t stream = current_stream(index_);
    const T* r = residual.defined() ? residual.data<T>() : nullptr;
    T* stats = softmax_stats.data<T>();
    if (fused_attention_enabled() && single_query_fits(at)) {
      launch(single_query_forward_kernel<T>, single_query_grid(at), kSingleQueryWarps * kWarp,
             stream, at, q.data<T>(), k.data<T>(), v.data<T>(), r, static_cast<T>(scale),
             z.data<T>(), stats, pattern != nullptr ? pattern->data<T>() : nullptr);
      return;
    }
    if (fused_attention_enabled() && fused_attention_fits(at.keys, at.queries, at.head_size,
                                                          at.value_size, q.dtype(), false)) {
      const FusedStage stage = fused_stage<T>(at, false);
      with_fused_stage(stage, [&](auto bytes, auto per_warp) {
        launch(fused_forward_kernel<T, decltype(bytes)::value, decltype(per_warp)::value>,
               fused_grid(stage, at.batch), fused_block_threads(stage, at.queries), stream, at,
               q.data<T>(), k.data<T>(), v.data<T>(), r, static_cast<T>(scale), z.data<T>(),
               stats, pattern != nullptr ? pattern->data<T>() : nullptr);
      });
      return;
    }
    // The second kernel reads the probabilities: scratch when they were not asked for.
    const Tensor probs =
        pattern != nullptr ? *pattern
                           : Tensor::empty({at.batch, at.heads, at.queries, at.keys}, q.dtype(),
                                           device());
    const int64_t rows = at.batch * at.heads * at.queries;
    launch(softmax_rows_kernel<T>, grid_for(rows * kWarp), kBlockThreads, stream, at,
           q.data<T>(), k.data<T>(), static_cast<T>(scale), stats, probs.data<T>(), rows);
    if (z.numel() > 0)
      launch(weighted_values_kernel<T>, grid_for(z.numel()), kBlockThreads, stream, at,
             v.data<T>(), r, probs.data<T>(), z.data<T>(), z.numel());
  });
}

void CudaBackend::attention_backward(const Tensor& dz_in, const Tensor& q_table_in,
                                     const Tensor& k_table_in, const Tensor& v_table_in,
                                     const Tensor& q_rows_in, const Tensor& kv_rows_in,
                                     const Tensor& stats_in, double scale, bool sum_heads,
                                     const Tensor& residual, Tensor& dq, Tensor& dk, Tensor& dv,
                                     Tensor& dresidual) {
  const char* op = "attention_backward";
  check_on(dz_in, device(), op, "dz");
  check_on(q_table_in, device(), op, "q_table");
  check_on(k_table_in, device(), op, "k_table");
  check_on(v_table_in, device(), op, "v_table");
  check_on(q_rows_in, device(), op, "q_rows");
  check_on(kv_rows_in, device(), op, "kv_rows");
  check_on(stats_in, device(), op, "softmax_stats");
  const Tensor dz = contiguous_copy_if_needed(dz_in), q = contiguous_copy_if_needed(q_table_in),
               k = contiguous_copy_if_needed(k_table_in), v = contiguous_copy_if_needed(v_table_in),
               stats = contiguous_copy_if_needed(stats_in);
  const Tensor q_rows = contiguous_copy_if_needed(q_rows_in),
               kv_rows = contiguous_copy_if_needed(kv_rows_in);
  const RowsDistinct distinct =
      check_rows(*this, op, q_rows, q.size(0), kv_rows, k.size(0), true);
  const Layout at = attention_layout(q, v, q_rows, kv_rows, sum_heads);
  check_softmax_stats(op, stats, at, q.dtype());
  check_attention_residual(op, residual, q, at);
  dispatch_floating(q.dtype(), op, [&]<typename T>() {
    if (at.batch * at.heads * at.queries * at.keys == 0) {  // no example reads any row
      dq = Tensor::empty(q.shape(), q.dtype(), device());
      dk = Tensor::empty(k.shape(), k.dtype(), device());
      dv = Tensor::empty(v.shape(), v.dtype(), device());
      for (Tensor* t : {&dq, &dk, &dv}) fill(*t, 0);
      if (residual.defined()) dresidual = index_add(dz, q_rows, residual.size(0));
      return;
    }
    DeviceGuard guard(index_);
    cudaStream_t stream = current_stream(index_);
    const T s = static_cast<T>(scale);
    // Each gradient straight into its zeroed table when that table's rows are distinct, else
    // per example, [B, Tq | T, H, D], summed into the table by index_add.
    const auto target = [&](bool direct, const Tensor& table, int64_t positions) {
      if (!direct)
        return Tensor::empty({at.batch, positions, at.heads, table.size(2)}, q.dtype(), device());
      Tensor out = Tensor::empty(table.shape(), q.dtype(), device());
      fill(out, 0);  // rows no example reads
      return out;
    };
    const int64_t* q_dest = distinct.q ? q_rows.data<int64_t>() : nullptr;
    const int64_t* kv_dest = distinct.kv ? kv_rows.data<int64_t>() : nullptr;
    const bool single_query = fused_attention_enabled() && single_query_fits(at);
    // Whether the sorted scatter-add takes every sum of this backward: the switch is on, each
    // fits it, and check_rows's range checks cover every table (the autograd op's shapes;
    // anything else goes through index_add_together, which checks each index array itself).
    const auto sorted_sums_fit = [&] {
      const int64_t examples = at.batch * at.queries, pairs = at.batch * at.keys;
      return sorted_index_add_enabled() && v.size(0) == k.size(0) &&
             (distinct.q || sorted_index_add_fits(examples, q.size(0), at.heads * at.head_size)) &&
             sorted_index_add_fits(pairs, k.size(0), at.heads * at.head_size) &&
             sorted_index_add_fits(pairs, v.size(0), at.heads * at.value_size) &&
             (!residual.defined() ||
              (residual.size(0) == q.size(0) &&
               sorted_index_add_fits(examples, residual.size(0),
                                     residual.numel() / residual.size(0))));
    };
    dq = target(distinct.q, q, at.queries);
    if (single_query && !distinct.kv && weighted_key_value_rows_enabled() && sorted_sums_fit()) {
      single_query_backward_as_weights<T>(at, stream, s, dz, q, k, v, stats, q_rows, kv_rows,
                                          q_dest, residual, dq, dk, dv, dresidual);
      return;
    }
    dk = target(distinct.kv, k, at.keys);
    dv = target(distinct.kv, v, at.keys);
    if (single_query) {
      launch(single_query_backward_kernel<T>, single_query_grid(at), kSingleQueryWarps * kWarp,
             stream, at, dz.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), stats.data<T>(), s,
             q_dest, kv_dest, dq.data<T>(), dk.data<T>(), dv.data<T>(), nullptr, nullptr);
    } else if (fused_attention_enabled() &&
               fused_attention_fits(at.keys, at.queries, at.head_size, at.value_size, q.dtype(),
                                    true)) {
      const FusedStage stage = fused_stage<T>(at, true);
      with_fused_stage(stage, [&](auto bytes, auto per_warp) {
        launch(fused_backward_kernel<T, decltype(bytes)::value, decltype(per_warp)::value>,
               fused_grid(stage, at.batch), fused_block_threads(stage, at.queries), stream, at,
               dz.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), stats.data<T>(), s, q_dest,
               kv_dest, dq.data<T>(), dk.data<T>(), dv.data<T>());
      });
    } else {
      const int64_t rows = at.batch * at.heads * at.queries;
      const Shape pattern_shape{at.batch, at.heads, at.queries, at.keys};
      const Tensor pattern = Tensor::empty(pattern_shape, q.dtype(), device()),
                   ds = Tensor::empty(pattern_shape, q.dtype(), device());
      launch(pattern_from_stats_kernel<T>, grid_for(pattern.numel()), kBlockThreads, stream, at,
             q.data<T>(), k.data<T>(), s, stats.data<T>(), pattern.data<T>(), pattern.numel());
      launch(score_grad_kernel<T>, grid_for(rows * kWarp), kBlockThreads, stream, at,
             dz.data<T>(), v.data<T>(), pattern.data<T>(), ds.data<T>(), rows);
      const int64_t nq = at.batch * at.queries * at.heads * at.head_size;
      const int64_t nk = at.batch * at.keys * at.heads * at.head_size;
      const int64_t nv = at.batch * at.keys * at.heads * at.value_size;
      if (nq > 0)
        launch(query_grad_kernel<T>, grid_for(nq), kBlockThreads, stream, at, k.data<T>(),
               ds.data<T>(), s, q_dest, dq.data<T>(), nq);
      if (nk > 0)
        launch(key_grad_kernel<T>, grid_for(nk), kBlockThreads, stream, at, q.data<T>(),
               ds.data<T>(), s, kv_dest, dk.data<T>(), nk);
      if (nv > 0)
        launch(value_grad_kernel<T>, grid_for(nv), kBlockThreads, stream, at, dz.data<T>(),
               pattern.data<T>(), kv_dest, dv.data<T>(), nv);
    }
    // The scatter-adds into shared table rows, and the residual's dz scattered back through
    // q_rows, in one launch; each sum replaces its dense input.
    std::vector<IndexAdd> adds;
    std::vector<Tensor*> summed;
    const auto add = [&](Tensor& dense, const Tensor& rows, int64_t table_rows) {
      adds.push_back({dense, rows, table_rows});
      summed.push_back(&dense);
    };
    if (!distinct.q) add(dq, q_rows, q.size(0));
    if (!distinct.kv) {
      add(dk, kv_rows, k.size(0));
      add(dv, kv_rows, v.size(0));
    }
    if (residual.defined()) {
      dresidual = dz;
      add(dresidual, q_rows, residual.size(0));
    }
    const std::vector<Tensor> sums = index_add_together(adds);
    for (size_t t = 0; t < sums.size(); ++t) *summed[t] = sums[t];
  });
}

}  // namespace tg::cuda
