// Registration of one CudaBackend per GPU that the CUDA runtime can see.
#include "kernels/cuda/registration.h"

#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_backend.h"

namespace tg::cuda {

std::string register_backends() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();  // not an error of whatever CUDA call comes next
    return cat("no CUDA device is available (cudaGetDeviceCount: ", cudaGetErrorString(error), ")");
  }
  if (count == 0) return "no CUDA device is available (cudaGetDeviceCount: 0 devices)";
  // Never destroyed, like the allocators and streams they use.
  for (int i = 0; i < count; ++i) register_backend(Device::cuda(i), new CudaBackend(i));
  return "";
}

}  // namespace tg::cuda
