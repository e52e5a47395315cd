// What the SGEMM versions share: operand element access, tile loaders (scalar and 16-byte, with
// the optional operand masks), the guarded float4 store, batch offsets, the optional epilogue
// (bias, activation, pre-activation output), and the launch helper that splits large batches and
// turns a launch error into tg::Error.
//
// The same code also compiles as plain C++ against tests/cuda_emulation/ (TG_CUDA_HOST_EMULATION),
// which runs every CUDA thread of a block on a host thread: that is how the index math of every
// version is checked on machines without a GPU.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/rounded.cuh"
#include "kernels/cuda/sgemm/sgemm.h"

#include <cuda_runtime.h>  // under host emulation, tests/cuda_emulation's stand-in

namespace tg::cuda::sgemm_detail {

constexpr int kMaxGridY = 65535;  // gridDim.y and gridDim.z limit; gridDim.x allows 2^31 - 1

constexpr int ceil_div(int a, int b) { return static_cast<int>((int64_t{a} + b - 1) / b); }

// M tiles go on grid y (N tiles on x, batch on z), so a version with BM rows per block handles
// M up to 65535 * BM.
inline bool grid_fits(const GemmArgs& a, int rows_per_block) {
  return ceil_div(a.M, rows_per_block) <= kMaxGridY;
}

// Every group's operands start 16 bytes apart from the first's (a multiple of 4 floats).
inline bool groups_aligned(const GemmArgs& a) {
  for (int g = 1; g < std::min(a.groups, GemmArgs::kMaxGroups); ++g)
    if (a.group_a[g] % 4 != 0 || a.group_b[g] % 4 != 0 || a.group_c[g] % 4 != 0) return false;
  return true;
}

// 16-byte loads and stores need every row start aligned: the pointers, the leading dimensions and
// the batch strides all multiples of 4 floats.
inline bool float4_aligned(const GemmArgs& a) {
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return aligned(a.A) && aligned(a.B) && aligned(a.C) && a.lda % 4 == 0 && a.ldb % 4 == 0 &&
         a.ldc % 4 == 0 && a.stride_a % 4 == 0 && a.stride_b % 4 == 0 && a.stride_c % 4 == 0 &&
         a.slice_stride_a % 4 == 0 && a.slice_stride_b % 4 == 0 && a.slice_stride_c % 4 == 0 &&
         (!a.pre || aligned(a.pre)) &&  // pre shares C's ldc and stride_c
         (!a.residual || aligned(a.residual)) && (!a.mask_c || aligned(a.mask_c)) &&  // as C
         (!a.mask_a || aligned(a.mask_a)) && (!a.mask_b || aligned(a.mask_b)) &&  // and A's, B's
         groups_aligned(a);
}

// Element (r, c) of a logical matrix stored row-major with leading dimension ld, or stored
// transposed (as its transpose, row-major) when T.
template <bool T>
__device__ __forceinline__ float element(const float* X, int64_t ld, int r, int c) {
  return T ? X[static_cast<int64_t>(c) * ld + r] : X[static_cast<int64_t>(r) * ld + c];
}

// An operand's element read through its mask: 0 where the mask is <= 0, else kept (also for a NaN
// mask, as PyTorch's ReLU gradient): the unfused `saved <= 0 ? 0 : dy`, so both give the same bits.
__device__ __forceinline__ float relu_masked(float mask, float v) {
  return mask <= 0.0f ? 0.0f : v;  // as UnaryOp::Step: NaN passes
}

// element() of X read through `mask` (laid out as X) when MASK and the mask is not null.
template <bool T, bool MASK>
__device__ __forceinline__ float masked_element(const float* X, const float* mask, int64_t ld,
                                                int r, int c) {
  const float v = element<T>(X, ld, r, c);
  if constexpr (MASK) {
    if (mask) return relu_masked(element<T>(mask, ld, r, c), v);
  }
  return v;
}

// Where matrix `matrix` of the batch starts in A, B and C: its group's offsets, then the batch
// strides for its place in the group (GemmArgs::groups; one group: matrix * stride).
struct BatchOffsets {
  int64_t a, b, c;
};
// offsets[group] by selects, not an indexed load: a kernel parameter indexed at run time would
// be copied to local memory.
__host__ __device__ __forceinline__ int64_t group_offset(
    const int64_t (&offsets)[GemmArgs::kMaxGroups], int64_t group) {
  static_assert(GemmArgs::kMaxGroups == 3, "group_offset selects among three groups");
  return group == 0 ? offsets[0] : group == 1 ? offsets[1] : offsets[2];
}
__host__ __device__ __forceinline__ BatchOffsets matrix_offsets(const GemmArgs& p,
                                                                int64_t matrix) {
  if (p.groups == 1) return {matrix * p.stride_a, matrix * p.stride_b, matrix * p.stride_c};
  const int64_t per_group = p.batch / p.slices / p.groups;
  const int64_t group = matrix / per_group, i = matrix % per_group;
  return {group_offset(p.group_a, group) + i * p.stride_a,
          group_offset(p.group_b, group) + i * p.stride_b,
          group_offset(p.group_c, group) + i * p.stride_c};
}

// The offsets of batch entry blockIdx.z in A, B and C: matrix z / slices, slice z % slices.
__device__ __forceinline__ BatchOffsets batch_offsets(const GemmArgs& p) {
  const int64_t z = blockIdx.z, slice = z % p.slices;
  const BatchOffsets m = matrix_offsets(p, z / p.slices);
  return {m.a + slice * p.slice_stride_a, m.b + slice * p.slice_stride_b,
          m.c + slice * p.slice_stride_c};
}

// The K of batch entry blockIdx.z: K itself, or under split-K its slice's (the last slice is what
// is left of split_k_total).
__device__ __forceinline__ int entry_k(const GemmArgs& p) {
  if (p.slices == 1) return p.K;
  const int64_t rest = p.split_k_total - static_cast<int64_t>(blockIdx.z % p.slices) * p.K;
  return static_cast<int>(rest < p.K ? rest : p.K);
}

// Moves A, B and C to the batch entry blockIdx.z.
__device__ __forceinline__ void select_batch(const GemmArgs& p, const float*& A, const float*& B,
                                             float*& C) {
  const BatchOffsets o = batch_offsets(p);
  A = p.A + o.a;
  B = p.B + o.b;
  C = p.C + o.c;
}

// The operand masks for batch entry blockIdx.z (they share A's and B's strides), null where
// there are none.
__device__ __forceinline__ void select_batch_masks(const GemmArgs& p, const float*& mask_a,
                                                   const float*& mask_b) {
  const BatchOffsets o = batch_offsets(p);
  mask_a = p.mask_a ? p.mask_a + o.a : nullptr;
  mask_b = p.mask_b ? p.mask_b + o.b : nullptr;
}

// The epilogue's pre-activation output and residual input for batch entry blockIdx.z (each null
// when there is none). (The output mask is found from C's own pointer as each value is stored,
// mask_at(): held here for the whole kernel, it made v7 spill.)
struct EpilogueRows {
  float* pre = nullptr;
  const float* residual = nullptr;
};
__device__ __forceinline__ EpilogueRows select_batch_epilogue(const GemmArgs& p) {
  const int64_t c = batch_offsets(p).c;
  return {p.pre ? p.pre + c : nullptr, p.residual ? p.residual + c : nullptr};
}

// mask_c's element for C[at], C being the batch entry's output (p.C moved to its matrix): the
// mask is laid out as C, so it sits as far from p.mask_c.
__device__ __forceinline__ const float* mask_at(const GemmArgs& p, const float* C, int64_t at) {
  return p.mask_c + (C - p.C) + at;
}

// The epilogue's arithmetic, exactly that of kernels/cuda/linear_epilogue.cu's bias_activation
// for float (gelu in double), so that fused and unfused agree bit for bit.
constexpr double kInvSqrt2 = 0.70710678118654752440;

__device__ __forceinline__ float activate(Activation act, float x) {
  switch (act) {
    case Activation::Identity:
      return x;
    case Activation::Relu:
      return x < 0.0f ? 0.0f : x;  // as UnaryOp::Relu: NaN stays NaN
    case Activation::Gelu:
      return static_cast<float>(0.5 * x * (1.0 + ::erf(x * kInvSqrt2)));
    case Activation::Square:
      return mul_rn(x, x);  // rounded before the residual's add, as in the unfused kernels
  }
  return x;
}

// v = acc + bias[n] (+ 0 without a bias, as the unfused kernel: -0 becomes +0).
__device__ __forceinline__ float add_bias(const float* bias, float acc, int n) {
  return acc + (bias ? bias[n] : 0.0f);
}

// The ReLU's backward through mask_c (a select, as activation_backward's): 0 where the mask is
// <= 0, else the gradient (NaN masks too).
__device__ __forceinline__ float relu_mask(float mask, float gradient) {
  return mask <= 0.0f ? 0.0f : gradient;
}

// Stores C[at] (and pre[at]) for the accumulator of column n, with or without the epilogue.
template <bool EPI>
__device__ __forceinline__ void store_one(const GemmArgs& p, float* C, const EpilogueRows& e,
                                          int64_t at, int n, float acc) {
  if constexpr (EPI) {
    const float v = add_bias(p.bias, acc, n);
    if (e.pre) e.pre[at] = v;
    const float y = activate(p.act, v);
    const float out = e.residual ? y + e.residual[at] : y;
    C[at] = p.mask_c ? relu_mask(*mask_at(p, C, at), out) : out;
  } else {
    C[at] = acc;
  }
}

// Copies the tile X[r0 : r0 + R, c0 : c0 + C] of a logical rows x cols matrix (stored transposed
// when T) into shared memory: logical (r, c) goes to s[r * LDS + c], or to s[c * LDS + r] when
// SMEM_T. Elements past the matrix edge become 0, so they add nothing to the dot products.
// The NT threads of a 1-D block walk the tile in the order of the *stored* layout, so consecutive
// threads read consecutive addresses (coalesced) whether or not the operand is transposed.
// In stored coordinates (sr, sc) the element lands at s[sr * LDS + sc] when T == SMEM_T (the two
// transpositions cancel) and at s[sc * LDS + sr] otherwise.
// With MASK, each element is read through `mask` (laid out as X; none when null).
template <int R, int C, int NT, bool T, bool SMEM_T, int LDS, bool MASK = false>
__device__ __forceinline__ void load_tile(float* s, const float* X, int64_t ld, int rows, int cols,
                                          int r0, int c0, const float* mask = nullptr) {
  constexpr int SR = T ? C : R, SC = T ? R : C;  // the tile's shape in the stored layout
  static_assert((SR * SC) % NT == 0, "every thread loads the same number of elements");
  const int stored_rows = T ? cols : rows, stored_cols = T ? rows : cols;
  const int sr0 = T ? c0 : r0, sc0 = T ? r0 : c0;
#pragma unroll
  for (int j = 0; j < SR * SC / NT; ++j) {
    const int i = static_cast<int>(threadIdx.x) + j * NT;
    const int sr = i / SC, sc = i % SC;
    const int gr = sr0 + sr, gc = sc0 + sc;
    float v = 0.0f;
    if (gr < stored_rows && gc < stored_cols) {
      const int64_t at = static_cast<int64_t>(gr) * ld + gc;
      v = X[at];
      if constexpr (MASK) {
        if (mask) v = relu_masked(mask[at], v);
      }
    }
    s[T == SMEM_T ? sr * LDS + sc : sc * LDS + sr] = v;
  }
}

// Stored elements (r, c .. c + 3) of a rows x cols row-major matrix as one float4, zeros past the
// edges. ALIGNED: a single 16-byte load when all four are inside, which needs X + r * ld + c
// 16-byte aligned (float4_aligned() and c % 4 == 0). Else four 4-byte loads, at any address.
template <bool ALIGNED = true>
__device__ __forceinline__ float4 load4(const float* X, int64_t ld, int r, int c, int rows,
                                        int cols) {
  float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  if (r < rows) {
    const float* p = X + static_cast<int64_t>(r) * ld + c;
    if (ALIGNED && c + 3 < cols) {
      v = *reinterpret_cast<const float4*>(p);
    } else {
      if (c < cols) v.x = p[0];
      if (c + 1 < cols) v.y = p[1];
      if (c + 2 < cols) v.z = p[2];
      if (!ALIGNED && c + 3 < cols) v.w = p[3];
    }
  }
  return v;
}

// load4() through a mask laid out as X (none when null): one more 16-byte read, of the mask.
__device__ __forceinline__ float4 load4_masked(const float* X, const float* mask, int64_t ld,
                                               int r, int c, int rows, int cols) {
  float4 v = load4(X, ld, r, c, rows, cols);
  if (mask) {
    const float4 keep = load4(mask, ld, r, c, rows, cols);
    v = make_float4(relu_masked(keep.x, v.x), relu_masked(keep.y, v.y),
                    relu_masked(keep.z, v.z), relu_masked(keep.w, v.w));
  }
  return v;
}

// load_tile() with 16-byte global reads along the stored rows: four elements per read. They land
// in shared memory as one 16-byte store when T == SMEM_T, else as four scalar stores down a column
// (this is how a row-major A tile becomes the k-major As[k][m] the inner loop reads).
// With MASK, the elements are read through `mask` (laid out as X, 16-byte aligned as X is).
// Without ALIGNED (and without MASK), the same tile from rows at any address: each group of four
// read as four 4-byte loads (load4<false>).
template <int R, int C, int NT, bool T, bool SMEM_T, int LDS, bool MASK = false,
          bool ALIGNED = true>
__device__ __forceinline__ void load_tile_float4(float* s, const float* X, int64_t ld, int rows,
                                                 int cols, int r0, int c0,
                                                 const float* mask = nullptr) {
  constexpr int SR = T ? C : R, SC = T ? R : C;
  constexpr int PER_ROW = SC / 4;  // float4s per stored tile row
  static_assert(SC % 4 == 0 && (SR * PER_ROW) % NT == 0, "whole float4s, same count per thread");
  static_assert(LDS % 4 == 0, "16-byte aligned shared-memory rows");
  static_assert(ALIGNED || !MASK, "masked tiles take 16-byte rows");
  const int stored_rows = T ? cols : rows, stored_cols = T ? rows : cols;
  const int sr0 = T ? c0 : r0, sc0 = T ? r0 : c0;
#pragma unroll
  for (int j = 0; j < SR * PER_ROW / NT; ++j) {
    const int i = static_cast<int>(threadIdx.x) + j * NT;
    const int sr = i / PER_ROW, sc = (i % PER_ROW) * 4;
    const float4 v = MASK ? load4_masked(X, mask, ld, sr0 + sr, sc0 + sc, stored_rows, stored_cols)
                          : load4<ALIGNED>(X, ld, sr0 + sr, sc0 + sc, stored_rows, stored_cols);
    if constexpr (T == SMEM_T) {
      *reinterpret_cast<float4*>(&s[sr * LDS + sc]) = v;
    } else {
      s[(sc + 0) * LDS + sr] = v.x;
      s[(sc + 1) * LDS + sr] = v.y;
      s[(sc + 2) * LDS + sr] = v.z;
      s[(sc + 3) * LDS + sr] = v.w;
    }
  }
}

// C[m, n .. n + 3] = v, skipping what lies outside M x N. ALIGNED: one 16-byte store when all
// four are inside (needs float4_aligned() and n % 4 == 0); else four 4-byte stores.
template <bool ALIGNED = true>
__device__ __forceinline__ void store4(float* C, int64_t ldc, int m, int n, int M, int N,
                                       float4 v) {
  if (m >= M) return;
  float* p = C + static_cast<int64_t>(m) * ldc + n;
  if (ALIGNED && n + 3 < N) {
    *reinterpret_cast<float4*>(p) = v;
  } else {
    if (n < N) p[0] = v.x;
    if (n + 1 < N) p[1] = v.y;
    if (n + 2 < N) p[2] = v.z;
    if (!ALIGNED && n + 3 < N) p[3] = v.w;
  }
}

// store4<ALIGNED>() of C[m, n .. n + 3] (and pre) through the epilogue when EPI; the bias is
// read only for columns inside N.
template <bool EPI, bool ALIGNED = true>
__device__ __forceinline__ void store4_epilogue(const GemmArgs& p, float* C, const EpilogueRows& e,
                                                int m, int n, float4 v) {
  if constexpr (EPI) {
    if (m >= p.M) return;
    // Columns past N are never stored, and their bias and residual are not read.
    v.x = n < p.N ? add_bias(p.bias, v.x, n) : v.x;
    v.y = n + 1 < p.N ? add_bias(p.bias, v.y, n + 1) : v.y;
    v.z = n + 2 < p.N ? add_bias(p.bias, v.z, n + 2) : v.z;
    v.w = n + 3 < p.N ? add_bias(p.bias, v.w, n + 3) : v.w;
    if (e.pre) store4<ALIGNED>(e.pre, p.ldc, m, n, p.M, p.N, v);
    v = make_float4(activate(p.act, v.x), activate(p.act, v.y), activate(p.act, v.z),
                    activate(p.act, v.w));
    if (e.residual) {
      const float* r = e.residual + static_cast<int64_t>(m) * p.ldc + n;
      if (n < p.N) v.x = v.x + r[0];
      if (n + 1 < p.N) v.y = v.y + r[1];
      if (n + 2 < p.N) v.z = v.z + r[2];
      if (n + 3 < p.N) v.w = v.w + r[3];
    }
    if (p.mask_c) {
      const float* k = mask_at(p, C, static_cast<int64_t>(m) * p.ldc + n);
      if (n < p.N) v.x = relu_mask(k[0], v.x);
      if (n + 1 < p.N) v.y = relu_mask(k[1], v.y);
      if (n + 2 < p.N) v.z = relu_mask(k[2], v.z);
      if (n + 3 < p.N) v.w = relu_mask(k[3], v.w);
    }
  }
  store4<ALIGNED>(C, p.ldc, m, n, p.M, p.N, v);
}

// Throws tg::Error when the last launch failed (bad configuration, too many resources, ...).
inline void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw Error(cat("sgemm ", kernel, ": kernel launch failed: ", cudaGetErrorName(e), ": ",
                    cudaGetErrorString(e)));
}

// Launches kernel(args) on `grid` (x and y) blocks of `block` threads per batch matrix, the batch
// on grid z in chunks of at most 65535 matrices; nothing for an empty product.
template <typename Kernel>
void launch(const char* name, Kernel kernel, dim3 grid, dim3 block, const GemmArgs& args,
            cudaStream_t stream) {
  if (args.M <= 0 || args.N <= 0 || args.batch <= 0) return;
  // The chunks below step over whole matrices; split_k_slice() keeps split products in one.
  check((args.slices == 1 && args.groups == 1) || args.batch <= kMaxGridY, "sgemm ", name, ": ",
        args.batch, " batch entries of K slices or groups exceed one launch");
  for (int b0 = 0; b0 < args.batch; b0 += kMaxGridY) {
    GemmArgs part = args;
    part.batch = std::min(kMaxGridY, args.batch - b0);
    part.A += b0 * args.stride_a;
    part.B += b0 * args.stride_b;
    part.C += b0 * args.stride_c;
    if (part.pre) part.pre += b0 * args.stride_c;
    if (part.residual) part.residual += b0 * args.stride_c;
    if (part.mask_c) part.mask_c += b0 * args.stride_c;
    if (part.mask_a) part.mask_a += b0 * args.stride_a;
    if (part.mask_b) part.mask_b += b0 * args.stride_b;
    grid.z = part.batch;
    enqueue_kernel(kernel, grid, block, stream, part);
    check_launch(name);
  }
}

// Calls f(std::bool_constant<trans_a>, std::bool_constant<trans_b>), so that each version compiles
// one kernel per combination and the inner loops know the layout at compile time.
template <typename F>
void with_transposes(const GemmArgs& a, F&& f) {
  using T = std::true_type;
  using N = std::false_type;
  if (a.trans_a)
    a.trans_b ? f(T{}, T{}) : f(T{}, N{});
  else
    a.trans_b ? f(N{}, T{}) : f(N{}, N{});
}

// with_transposes(), and a third argument std::bool_constant<args.has_epilogue()>: versions with
// the epilogue compile it as a separate kernel, so the plain kernel is unchanged.
template <typename F>
void with_transposes_and_epilogue(const GemmArgs& a, F&& f) {
  if (a.has_epilogue())
    with_transposes(a, [&](auto ta, auto tb) { f(ta, tb, std::true_type{}); });
  else
    with_transposes(a, [&](auto ta, auto tb) { f(ta, tb, std::false_type{}); });
}

// Calls f(std::bool_constant<args.has_mask()>): masked loads are a separate kernel too.
template <typename F>
void with_mask(const GemmArgs& a, F&& f) {
  if (a.has_mask())
    f(std::true_type{});
  else
    f(std::false_type{});
}

// with_transposes_and_epilogue() and with_mask() together: f(trans_a, trans_b, epilogue, mask),
// each a std::bool_constant, for the versions that compile all four choices (v5, v7, v8).
template <typename F>
void with_transposes_epilogue_and_mask(const GemmArgs& a, F&& f) {
  with_transposes_and_epilogue(a, [&](auto ta, auto tb, auto epi) {
    with_mask(a, [&](auto mask) { f(ta, tb, epi, mask); });
  });
}

}  // namespace tg::cuda::sgemm_detail
