// Programmatic dependent launch (compute capability 9.0 and later): a kernel may be launched
// while the kernel before it on the stream is still finishing, so that the gap between two
// kernels (block scheduling, the launch itself) overlaps the end of the first. A training step
// is ~55 small kernels in a row, so those gaps are a large share of it.
//
// It is safe only if every kernel waits for its predecessor before it touches memory: each
// kernel of this backend therefore begins with kernel_prologue(). The prologue waits until the
// kernel before has finished and its writes are visible, then lets the kernel after it launch
// (it waits in its own prologue). Launched without the attribute (before Hopper, or when
// dependent launches are off), the wait returns at once. The emulated device checks that every
// thread of every kernel runs the prologue (tests/cuda_emulation/emulated_cuda.h).
//
// Off unless TG_CUDA_PDL=1 is in the environment: it has not yet been measured on a GPU
// (scripts/device_check.sh times the step both ways and runs the CUDA tests with it on).
#pragma once

namespace tg::cuda {

// Whether kernels launched on `device` may overlap their predecessor: TG_CUDA_PDL=1, a device of
// compute capability 9.0 or later, and kernels compiled for it (kernel_ptx_version >= 90; code
// compiled for an older GPU has no wait in its prologue). Read once per device.
bool dependent_launches(int device);

// The virtual architecture that the code this library's kernels run on `device` was compiled
// for, as cudaFuncAttributes::ptxVersion (90 for compute_90: what __CUDA_ARCH__ was), or 0 if
// the runtime cannot say.
int kernel_ptx_version(int device);

}  // namespace tg::cuda

#if defined(__CUDACC__) || defined(TG_CUDA_HOST_EMULATION)
namespace tg::cuda {

// The first statement of every kernel (see above).
__device__ __forceinline__ void kernel_prologue() {
#if defined(TG_CUDA_HOST_EMULATION)
  tg_emulation::note_kernel_prologue();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

}  // namespace tg::cuda
#endif
