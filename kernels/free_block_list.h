// FreeBlockList: the bookkeeping every caching allocator shares (kernels/cpu/block_cache.h for
// host memory, kernels/cuda/device_caching_allocator.h for device memory): freed blocks by
// capacity, handed out again best-fit, with a cap on the bytes held back. Thread-safe; it never
// allocates or frees memory itself.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>

namespace tg {

class FreeBlockList {
 public:
  explicit FreeBlockList(size_t max_cached) : max_cached_(max_cached) {}

  // The smallest free block of at least `capacity` bytes, removed from the list, with its
  // capacity written back; null when none fits. Never more than 1.5x the request: a small
  // tensor must not pin a big block.
  void* take(size_t& capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.lower_bound(capacity);
    if (it == free_.end() || it->first > capacity + capacity / 2) return nullptr;
    void* block = it->second;
    capacity = it->first;
    cached_ -= capacity;
    free_.erase(it);
    return block;
  }

  // Keeps a freed block unless the list would then hold more than its cap; false means the
  // caller frees it now.
  bool put(void* block, size_t capacity) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_ + capacity > max_cached_) return false;
    free_.emplace(capacity, block);
    cached_ += capacity;
    return true;
  }

  // Removes any one block (null when the list is empty), for emptying it one block at a time.
  void* pop(size_t& capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty()) return nullptr;
    const auto [size, block] = *free_.begin();
    free_.erase(free_.begin());
    cached_ -= size;
    capacity = size;
    return block;
  }

  size_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  const size_t max_cached_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;  // capacity -> block
  size_t cached_ = 0;
};

}  // namespace tg
