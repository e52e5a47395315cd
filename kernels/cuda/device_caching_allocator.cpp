// DeviceCachingAllocator: best-fit reuse of freed device blocks, and graphs' private pools.
#include "kernels/cuda/device_caching_allocator.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_guard.h"

namespace tg::cuda {

struct DeviceCachingAllocator::PrivatePool {
  FreeBlockList free{std::numeric_limits<size_t>::max()};  // no cap: the graph owns them all
  bool retired = false;  // its graph is gone (guarded by the allocator's pools_mutex_)
};

namespace {
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Small blocks in 512-byte classes; from 1 MiB up, 128 KiB classes, so near sizes share one.
size_t size_class(size_t nbytes) {
  const size_t capacity = round_up(std::max<size_t>(nbytes, 1), 512);
  return capacity < (size_t{1} << 20) ? capacity : round_up(capacity, size_t{128} << 10);
}

std::string mib(size_t bytes) { return cat(bytes >> 20, " MiB"); }

// The runtime counts cudaMalloc among the calls it forbids to a capturing thread (it is not
// recorded into the graph): the thread relaxes its capture mode for the call, as PyTorch's
// allocator does. That is safe here because the block is never freed while its graph lives.
class RelaxedCaptureMode {
 public:
  RelaxedCaptureMode() { TG_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode_)); }
  ~RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  RelaxedCaptureMode(const RelaxedCaptureMode&) = delete;
  RelaxedCaptureMode& operator=(const RelaxedCaptureMode&) = delete;

 private:
  cudaStreamCaptureMode mode_ = cudaStreamCaptureModeRelaxed;
};
}  // namespace

void* DeviceCachingAllocator::device_malloc(size_t nbytes, size_t capacity, bool capturing) {
  DeviceGuard guard(device_);
  void* block = nullptr;
  cudaError_t error;
  if (capturing) {
    RelaxedCaptureMode relaxed;
    error = cudaMalloc(&block, capacity);
  } else {
    error = cudaMalloc(&block, capacity);
    if (error == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it: the retry decides
      clear();
      error = cudaMalloc(&block, capacity);
    }
  }
  if (error == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw Error(cat("allocate: cuda:", device_, " is out of memory for ", nbytes, " bytes (",
                    mib(free_bytes), " free of ", mib(total_bytes), ")",
                    capturing ? " while capturing a CUDA graph, when the cache cannot be emptied "
                                "(cudaFree is forbidden then): free memory before capturing"
                              : ""));
  }
  TG_CUDA_CHECK(error);
  ++device_mallocs_;
  return block;
}

void* DeviceCachingAllocator::allocate(size_t nbytes, size_t& capacity) {
  capacity = size_class(nbytes);
  std::shared_ptr<PrivatePool> pool;
  {
    std::lock_guard<std::mutex> lock(pools_mutex_);
    pool = capturing_;
  }
  if (pool == nullptr) {
    if (void* block = free_.take(capacity)) return block;
    return device_malloc(nbytes, capacity, false);
  }
  // A cached block is safe to adopt: no live graph uses it, and the eager work that did was
  // queued before any replay.
  void* block = pool->free.take(capacity);
  if (block == nullptr) block = free_.take(capacity);
  if (block == nullptr) block = device_malloc(nbytes, capacity, true);
  std::lock_guard<std::mutex> lock(pools_mutex_);
  pool_blocks_.emplace(block, std::move(pool));
  return block;
}

void DeviceCachingAllocator::release(void* block, size_t capacity) noexcept {
  {
    std::lock_guard<std::mutex> lock(pools_mutex_);
    if (capturing_ != nullptr || !pool_blocks_.empty()) {
      std::shared_ptr<PrivatePool> owner;
      if (auto it = pool_blocks_.find(block); it != pool_blocks_.end()) {
        owner = std::move(it->second);
        pool_blocks_.erase(it);
      }
      // Back to its live graph's pool; any other block freed during a capture may be in the
      // work just recorded, so the capture's pool keeps it.
      if (owner != nullptr && !owner->retired) {
        owner->free.put(block, capacity);
        return;
      }
      if (capturing_ != nullptr) {
        capturing_->free.put(block, capacity);
        return;
      }
    }
  }
#if defined(TG_CUDA_HOST_EMULATION)
  // The emulated device (tests/cuda_emulation) has run every kernel by the time its launch
  // returns, so nothing uses the block now: fill it with NaN, as it fills cudaMalloc's fresh
  // memory, so that a kernel reading what it has not written shows in the tests.
  std::memset(block, 0xFF, capacity);
#endif
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

std::shared_ptr<DeviceCachingAllocator::PrivatePool> DeviceCachingAllocator::begin_private_pool() {
  std::lock_guard<std::mutex> lock(pools_mutex_);
  check(capturing_ == nullptr, "capture: cuda:", device_,
        " is already capturing a graph (one capture at a time per device)");
  capturing_ = std::make_shared<PrivatePool>();
  return capturing_;
}

void DeviceCachingAllocator::end_private_pool() noexcept {
  std::lock_guard<std::mutex> lock(pools_mutex_);
  capturing_.reset();
}

void DeviceCachingAllocator::release_private_pool(
    const std::shared_ptr<PrivatePool>& pool) noexcept {
  if (pool == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(pools_mutex_);
    pool->retired = true;
  }
  size_t capacity = 0;
  while (void* block = pool->free.pop(capacity)) release(block, capacity);
}

size_t DeviceCachingAllocator::cached_bytes() const { return free_.cached_bytes(); }

void DeviceCachingAllocator::clear() {
  {
    std::lock_guard<std::mutex> lock(pools_mutex_);
    check(capturing_ == nullptr, "allocator: cuda:", device_,
          " cannot empty its cache while capturing a CUDA graph (cudaFree is forbidden then)");
  }
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
