// CUDA fill_random: element i is random_element(seed, counter, i), the very function the CPU
// backend calls, so both devices give the same tensor for a (seed, counter). Its multiply-adds
// are explicit fma's (core/random.h says why), and it is built with --fmad=false
// (CMakeLists.txt) so that nothing else is contracted: Uniform and DropoutMask match the CPU bit
// for bit; Normal differs only by the last-bit differences between the device's and glibc's log,
// sin and cos.
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/dispatch.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/stream.h"
#include "kernels/random_element.h"

namespace tg::cuda {

namespace {
template <typename T>
__global__ void fill_random_kernel(T* out, int64_t n, RandomKind kind, uint64_t seed,
                                   uint64_t counter, double a, double b) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) out[i] = random_element<T>(kind, seed, counter, i, a, b);
}
}  // namespace

void CudaBackend::fill_random(const Tensor& dst, RandomKind kind, uint64_t seed, uint64_t counter,
                              double a, double b) {
  check(dst.is_contiguous(), "fill_random: destination must be contiguous");
  check(dst.device() == device(), "fill_random: destination is on ", dst.device().str(), ", not ",
        device().str());
  const int64_t n = dst.numel();
  dispatch_floating(dst.dtype(), "fill_random", [&]<typename T>() {
    if (n == 0) return;
    DeviceGuard guard(index_);
    launch(fill_random_kernel<T>, grid_for(n), kBlockThreads, current_stream(index_), dst.data<T>(),
           n, kind, seed, counter, a, b);
  });
}

}  // namespace tg::cuda
