// DeviceGuard: makes a CUDA device current for a scope (allocations, streams and launches act
// on the current device) and restores the previous one after.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/check.h"

namespace tg::cuda {

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    TG_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) TG_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() {
    int now = previous_;
    // A destructor cannot throw; setting back a device that was current cannot fail for a reason
    // worth stopping for.
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace tg::cuda
