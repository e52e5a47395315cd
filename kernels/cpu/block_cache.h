// BlockCache: reuses freed host blocks, so that a training loop, which frees and allocates the
// same activation sizes every step, stops paying for fresh pages (a page fault per 4 KiB: ~10% of
// a step measured before this cache). The same idea as PyTorch's CUDA caching allocator, kept
// deliberately simple: exact size classes, best fit, a cap on what is held back.
#pragma once

#include <cstddef>
#include "kernels/free_block_list.h"

namespace tg::cpu {

class BlockCache {
 public:
  // Blocks below `min_cached` go straight back to malloc (it is fast for them); freed blocks are
  // kept while the cache holds at most `max_cached` bytes.
  BlockCache(size_t min_cached, size_t max_cached) : min_cached_(min_cached), free_(max_cached) {}
  ~BlockCache();
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // A 64-byte aligned block of at least `nbytes` bytes, and its capacity; null when out of memory.
  void* allocate(size_t nbytes, size_t& capacity);
  void release(void* block, size_t capacity);

  size_t cached_bytes() const;
  void clear();  // frees every cached block

 private:
  const size_t min_cached_;
  FreeBlockList free_;
};

// The process-wide cache behind CpuBackend::allocate: blocks of 64 KiB and up, at most 512 MiB
// held.
BlockCache& host_block_cache();

}  // namespace tg::cpu
