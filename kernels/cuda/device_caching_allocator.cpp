// DeviceCachingAllocator: best-fit reuse of freed device blocks.
#include "kernels/cuda/device_caching_allocator.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_guard.h"

namespace tg::cuda {

namespace {
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Small blocks in 512-byte classes; from 1 MiB up, 128 KiB classes, so near sizes share one.
size_t size_class(size_t nbytes) {
  const size_t capacity = round_up(std::max<size_t>(nbytes, 1), 512);
  return capacity < (size_t{1} << 20) ? capacity : round_up(capacity, size_t{128} << 10);
}

std::string mib(size_t bytes) { return cat(bytes >> 20, " MiB"); }
}  // namespace

void* DeviceCachingAllocator::allocate(size_t nbytes, size_t& capacity) {
  capacity = size_class(nbytes);
  if (void* block = free_.take(capacity)) return block;
  DeviceGuard guard(device_);
  void* block = nullptr;
  cudaError_t error = cudaMalloc(&block, capacity);
  if (error == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it: the retry decides
    clear();
    error = cudaMalloc(&block, capacity);
  }
  if (error == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw Error(cat("allocate: cuda:", device_, " is out of memory for ", nbytes, " bytes (",
                    mib(free_bytes), " free of ", mib(total_bytes), ")"));
  }
  TG_CUDA_CHECK(error);
  return block;
}

void DeviceCachingAllocator::release(void* block, size_t capacity) noexcept {
  if (free_.put(block, capacity)) return;
  // Over the cap: give it back now. Errors are dropped (nothing can be thrown from here, and at
  // exit the runtime may already be unloading, when the driver frees everything anyway).
  int previous = device_;
  if (cudaGetDevice(&previous) != cudaSuccess) return;
  if (previous != device_) cudaSetDevice(device_);
  cudaFree(block);
  if (previous != device_) cudaSetDevice(previous);
  cudaGetLastError();
}

size_t DeviceCachingAllocator::cached_bytes() const { return free_.cached_bytes(); }

void DeviceCachingAllocator::clear() {
  DeviceGuard guard(device_);
  size_t capacity = 0;
  // One block at a time, so that a failing cudaFree leaves the rest listed.
  while (void* block = free_.pop(capacity)) TG_CUDA_CHECK(cudaFree(block));
}

DeviceCachingAllocator& device_allocator(int device) {
  static std::mutex mutex;
  static auto* allocators = new std::vector<DeviceCachingAllocator*>();  // by device index
  check(device >= 0, "cuda: no device ", device);
  std::lock_guard<std::mutex> lock(mutex);
  if (static_cast<size_t>(device) >= allocators->size()) allocators->resize(device + 1, nullptr);
  DeviceCachingAllocator*& allocator = (*allocators)[device];
  if (allocator == nullptr) {
    DeviceGuard guard(device);
    size_t free_bytes = 0, total_bytes = 0;
    TG_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    allocator = new DeviceCachingAllocator(device, total_bytes / 4);
  }
  return *allocator;
}

}  // namespace tg::cuda
