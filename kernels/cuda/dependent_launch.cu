// Whether kernels may overlap their predecessor on a device (dependent_launch.h).
#include "kernels/cuda/dependent_launch.h"

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace tg::cuda {

namespace {

bool requested() {
  static const bool on = [] {
    const char* value = std::getenv("TG_CUDA_PDL");
    return value != nullptr && std::strcmp(value, "1") == 0;
  }();
  return on;
}

// Does nothing: its attributes say which code the library's kernels run on a device, since
// every .cu file of the library is built for the same architectures.
__global__ void probe_kernel() {}

}  // namespace

int kernel_ptx_version(int device) {
  int current = 0;
  if (cudaGetDevice(&current) != cudaSuccess || cudaSetDevice(device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  cudaFuncAttributes attributes{};
  const bool known = cudaFuncGetAttributes(&attributes, probe_kernel) == cudaSuccess;
  if (!known) cudaGetLastError();  // not a launch error: the caller treats it as "too old"
  cudaSetDevice(current);
  return known ? attributes.ptxVersion : 0;
}

bool dependent_launches(int device) {
  if (!requested() || device < 0) return false;
  static std::mutex mutex;
  static std::vector<signed char> known;  // per device: -1 not asked yet, else 0 or 1
  std::lock_guard<std::mutex> lock(mutex);
  if (known.size() <= static_cast<size_t>(device)) known.resize(device + 1, -1);
  if (known[device] < 0) {
    int major = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
      cudaGetLastError();  // not a launch error: the launch goes ahead without overlap
      major = 0;
    }
    // The device must allow it, and the code it runs must wait in its prologue. A build for
    // sm_80 alone runs on a Hopper GPU as its compute_80 PTX compiled by the driver: sm_90
    // machine code (binaryVersion 90) whose prologue is empty (ptxVersion 80), a race.
    known[device] = major >= 9 && kernel_ptx_version(device) >= 90 ? 1 : 0;
  }
  return known[device] == 1;
}

}  // namespace tg::cuda
