// DeviceCachingAllocator: reuses freed device blocks, because cudaMalloc and cudaFree are slow
// (cudaFree also waits for the whole device), and a training loop frees and allocates the same
// activation sizes every step. The CUDA twin of kernels/cpu/block_cache.h, over plain cudaMalloc
// (never managed memory): size classes, best fit, a cap on what is held back.
//
// A block may be handed out again while kernels queued before its release still use it: that is
// safe because all the backend's work on a device runs on one stream (kernels/cuda/stream.h).
//
// While a CUDA graph is captured on the device (cuda_graph.h), the allocator serves it from a
// pool private to that graph, and frees go there too: the addresses the graph has baked in are
// then never handed to other code while the graph lives, even after the tensors that held them
// are freed (a replay writes them again). A block of the pool freed after the capture returns to
// the pool; when the graph is destroyed, the pool's blocks return to the ordinary cache.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "kernels/free_block_list.h"

namespace tg::cuda {

class DeviceCachingAllocator {
 public:
  // The blocks owned by one captured graph (defined in the .cpp).
  struct PrivatePool;

  // Freed blocks are kept while the cache holds at most `max_cached` bytes.
  DeviceCachingAllocator(int device, size_t max_cached)
      : device_(device), free_(max_cached) {}
  DeviceCachingAllocator(const DeviceCachingAllocator&) = delete;
  DeviceCachingAllocator& operator=(const DeviceCachingAllocator&) = delete;

  // A block of at least `nbytes` bytes on the device (256-byte aligned), and its capacity. When
  // cudaMalloc fails, the cache is emptied and the call retried once; then it throws tg::Error.
  // During a capture: from the capture's pool, else from the cache, else a new block; the cache
  // is never emptied then (cudaFree is forbidden while capturing), so running out throws at once.
  void* allocate(size_t nbytes, size_t& capacity);
  // Takes a block back. Never throws: Storage deleters call it, some after main has returned.
  void release(void* block, size_t capacity) noexcept;

  // From now until end_private_pool(), allocations and frees go to a new pool owned by the graph
  // being captured (the caller keeps it alive as long as the graph). One capture at a time per
  // device, by one host thread: throws tg::Error when one is already in progress.
  std::shared_ptr<PrivatePool> begin_private_pool();
  // The capture is over (ended or abandoned): allocations are ordinary again; the pool keeps its
  // blocks for the graph.
  void end_private_pool() noexcept;
  // The pool's graph is gone: its free blocks go back to the cache, and its blocks still in use go
  // there when they are released.
  void release_private_pool(const std::shared_ptr<PrivatePool>& pool) noexcept;

  int device() const { return device_; }
  size_t cached_bytes() const;  // in the ordinary cache (not in graphs' pools)
  // How many cudaMalloc calls have been made: allocations that no cached block could serve.
  uint64_t device_mallocs() const { return device_mallocs_.load(); }
  void clear();  // cudaFree of every cached block; throws tg::Error during a capture

 private:
  // cudaMalloc of `capacity` bytes (for a request of `nbytes`), counted; throws when out of memory.
  void* device_malloc(size_t nbytes, size_t capacity, bool capturing);

  const int device_;
  FreeBlockList free_;
  std::atomic<uint64_t> device_mallocs_{0};
  mutable std::mutex pools_mutex_;
  std::shared_ptr<PrivatePool> capturing_;  // the pool of the capture in progress, if any
  // Blocks in use that came from a pool, and that pool: their release returns them there.
  std::unordered_map<void*, std::shared_ptr<PrivatePool>> pool_blocks_;
};

// The allocator of `device`, created on first use with a cap of a quarter of its memory. Never
// destroyed: a static destructor would run after the CUDA runtime has shut down, and tensors
// held by other static objects may still be released late; the driver reclaims everything at
// exit.
DeviceCachingAllocator& device_allocator(int device);

}  // namespace tg::cuda
