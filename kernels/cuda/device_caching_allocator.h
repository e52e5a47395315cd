// DeviceCachingAllocator: reuses freed device blocks, because cudaMalloc and cudaFree are slow
// (cudaFree also waits for the whole device), and a training loop frees and allocates the same
// activation sizes every step. The CUDA twin of kernels/cpu/block_cache.h, over plain cudaMalloc
// (never managed memory): size classes, best fit, a cap on what is held back.
//
// A block may be handed out again while kernels queued before its release still use it: that is
// safe because all the backend's work on a device runs on one stream (kernels/cuda/stream.h).
#pragma once

#include <cstddef>

#include "kernels/free_block_list.h"

namespace tg::cuda {

class DeviceCachingAllocator {
 public:
  // Freed blocks are kept while the cache holds at most `max_cached` bytes.
  DeviceCachingAllocator(int device, size_t max_cached)
      : device_(device), free_(max_cached) {}
  DeviceCachingAllocator(const DeviceCachingAllocator&) = delete;
  DeviceCachingAllocator& operator=(const DeviceCachingAllocator&) = delete;

  // A block of at least `nbytes` bytes on the device (256-byte aligned), and its capacity. When
  // cudaMalloc fails, the cache is emptied and the call retried once; then it throws tg::Error.
  void* allocate(size_t nbytes, size_t& capacity);
  // Takes a block back. Never throws: Storage deleters call it, some after main has returned.
  void release(void* block, size_t capacity) noexcept;

  int device() const { return device_; }
  size_t cached_bytes() const;
  void clear();  // cudaFree of every cached block

 private:
  const int device_;
  FreeBlockList free_;
};

// The allocator of `device`, created on first use with a cap of a quarter of its memory. Never
// destroyed: a static destructor would run after the CUDA runtime has shut down, and tensors
// held by other static objects may still be released late; the driver reclaims everything at
// exit.
DeviceCachingAllocator& device_allocator(int device);

}  // namespace tg::cuda
