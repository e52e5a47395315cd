// CudaBackend::profiler_range: where a profiler started with collection off records (ncu
// --profile-from-start off, nsys --capture-range=cudaProfilerApi), so that a profile can hold
// one training step's kernels and nothing else (TG_PROFILE_STEP, grok/trainer.cpp). Without a
// profiler attached the calls do nothing.
#include <cuda_profiler_api.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_guard.h"

namespace tg::cuda {

void CudaBackend::profiler_range(bool begin) {
  DeviceGuard guard(index_);
  if (begin) TG_CUDA_CHECK(cudaProfilerStart());
  else TG_CUDA_CHECK(cudaProfilerStop());
}

}  // namespace tg::cuda
