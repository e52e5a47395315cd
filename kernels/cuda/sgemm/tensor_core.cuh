// The three PTX instructions the tensor-core SGEMMs (v9, v10) are built on, as small inline
// functions: the warp's 16 x 8 x 8 TF32 matrix multiply-add (mma.sync), the float -> TF32 rounding
// and the split of a float into two TF32 parts, and the asynchronous copy from global to shared
// memory (cp.async) with its commit and wait. Under host emulation (TG_CUDA_HOST_EMULATION)
// tests/cuda_emulation/emulated_cuda.h runs each as the PTX ISA defines it: the fragments spread
// over the lanes, the copies landing only when their group is waited for.
// Needs sm_80 (Ampere) or later.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>  // under host emulation, tests/cuda_emulation's stand-in
#ifndef TG_CUDA_HOST_EMULATION
#include <mma.h>
#endif

namespace tg::cuda::sgemm_detail {

// d += a @ b for one warp: A 16 x 8 (row-major), B 8 x 8 (column-major), D 16 x 8, in float32
// accumulators, the inputs read as TF32 (the low 13 mantissa bits are ignored). With
// g = lane / 4 and t = lane % 4, each lane holds a[r] = A(g + 8 (r % 2), t + 4 (r / 2)),
// b[r] = B(t + 4 r, g) and d[r] = D(g + 8 (r / 2), 2 t + r % 2).
__device__ __forceinline__ void mma_tf32_16x8x8(float (&d)[4], const uint32_t (&a)[4],
                                                const uint32_t (&b)[2]) {
#ifdef TG_CUDA_HOST_EMULATION
  tg_emulation::tensor_core_mma(d, a, b);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// x rounded to the nearest TF32 (ties away from zero, cvt.rna.tf32.f32): a float whose low 13
// mantissa bits are zero.
__device__ __forceinline__ float round_to_tf32(float x) {
  return nvcuda::wmma::__float_to_tf32(x);
}

// x as big + small, both TF32: big = x rounded to TF32, small = what that rounding lost, rounded
// again. big * big' + big * small' + small * big' then misses only small * small' (about 2^-22
// of the product) and small's own rounding: products as accurate as float32's. This is the
// "3xTF32" of CUTLASS. Two edges differ from float32, left as they are rather than checked in
// the inner loop (an input that large or infinite has already broken a training run):
// - an infinity's small is inf - inf, a NaN, so a product with an infinite input is a NaN
//   where float32 gives +-inf;
// - a finite x of magnitude >= 0x7f7ff000 (about 3.4026e38) rounds up to an infinite big.
__device__ __forceinline__ void split_tf32(float x, uint32_t& big, uint32_t& small) {
  const float hi = round_to_tf32(x);
  big = __float_as_uint(hi);
  small = __float_as_uint(round_to_tf32(x - hi));
}

// Copies the first `bytes` bytes (0 to COPY) of global `from` to shared `to` asynchronously and
// fills the rest of the COPY bytes with zeros: cp.async, which bypasses the registers. Both
// addresses must be aligned to COPY bytes; with bytes = 0 nothing is read, but `from` must still
// be a valid global address. Lands once the thread waits for its group.
template <int COPY>
__device__ __forceinline__ void cp_async(float* to, const float* from, int bytes) {
  static_assert(COPY == 4 || COPY == 16, "cp.async copies 4, 8 or 16 bytes; we use 4 and 16");
#ifdef TG_CUDA_HOST_EMULATION
  tg_emulation::cp_async(to, from, COPY, bytes);
#else
  const auto shared = static_cast<uint32_t>(__cvta_generic_to_shared(to));
  if constexpr (COPY == 16)  // .cg: cached in L2 only, the tile is read once per block
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared), "l"(from),
                 "r"(bytes)
                 : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(shared), "l"(from),
                 "r"(bytes)
                 : "memory");
#endif
}

// The copies this thread issued since the last commit become one group.
__device__ __forceinline__ void cp_async_commit() {
#ifdef TG_CUDA_HOST_EMULATION
  tg_emulation::cp_async_commit_group();
#else
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most PENDING of this thread's committed groups are still in flight. Other
// threads' copies are visible only after a __syncthreads() that follows their own waits.
template <int PENDING>
__device__ __forceinline__ void cp_async_wait() {
#ifdef TG_CUDA_HOST_EMULATION
  tg_emulation::cp_async_wait_group(PENDING);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING) : "memory");
#endif
}

}  // namespace tg::cuda::sgemm_detail
