// TG_HOST_DEVICE marks the few plain functions that host code and CUDA kernels share (Philox,
// the learning-rate schedule, Adam's per-step scalars, the attention's index math), so both
// compute them from one definition.
#pragma once

#if defined(__CUDACC__)
#define TG_HOST_DEVICE __host__ __device__
#else
#define TG_HOST_DEVICE  // host compilers, and the emulated device (tests/cuda_emulation)
#endif
