// The per-device streams, created lazily and never destroyed (see device_caching_allocator.cpp).
#include "kernels/cuda/stream.h"

#include <mutex>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_guard.h"

namespace tg::cuda {

cudaStream_t current_stream(int device) {
  static std::mutex mutex;
  static auto* streams = new std::vector<cudaStream_t>();  // by device index
  check(device >= 0, "cuda: no device ", device);
  std::lock_guard<std::mutex> lock(mutex);
  if (static_cast<size_t>(device) >= streams->size()) streams->resize(device + 1, nullptr);
  cudaStream_t& stream = (*streams)[device];
  if (stream == nullptr) {
    DeviceGuard guard(device);
    TG_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  }
  return stream;
}

void synchronize(int device) { TG_CUDA_CHECK(cudaStreamSynchronize(current_stream(device))); }

bool is_capturing(int device) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  TG_CUDA_CHECK(cudaStreamIsCapturing(current_stream(device), &status));
  return status != cudaStreamCaptureStatusNone;
}

}  // namespace tg::cuda
