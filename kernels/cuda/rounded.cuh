// Products and differences rounded on their own. nvcc contracts a * b + c into one fused
// multiply-add (a single rounding) wherever it may, and whether it may depends on the code
// around the expression: a branch turned into a select, a case fixed at compile time. Where two
// kernels must give the same bits (a fused kernel and the composition its test compares it
// with), the multiply that one of them could fuse with a following add is written with these,
// which nvcc and ptxas never contract. On the emulated device they are plain operations that GCC
// is kept from contracting too (tests/cuda_emulation/emulated_cuda.h).
#pragma once

namespace tg::cuda {

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }

}  // namespace tg::cuda
