// BlockCache: best-fit reuse of freed host blocks.
#include "kernels/cpu/block_cache.h"

#include <algorithm>
#include <cstdlib>

namespace tg::cpu {

namespace {
constexpr size_t kAlignment = 64;  // whole cache lines, and aligned AVX-512 loads
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

BlockCache::~BlockCache() { clear(); }

void* BlockCache::allocate(size_t nbytes, size_t& capacity) {
  capacity = round_up(std::max<size_t>(nbytes, 1), kAlignment);
  if (capacity >= min_cached_) {
    // Large blocks come in page multiples, so near sizes share a class.
    capacity = round_up(capacity, 4096);
    if (void* block = free_.take(capacity)) return block;
  }
  return std::aligned_alloc(kAlignment, capacity);
}

void BlockCache::release(void* block, size_t capacity) {
  if (capacity >= min_cached_ && free_.put(block, capacity)) return;
  std::free(block);
}

size_t BlockCache::cached_bytes() const { return free_.cached_bytes(); }

void BlockCache::clear() {
  size_t capacity = 0;
  while (void* block = free_.pop(capacity)) std::free(block);
}

BlockCache& host_block_cache() {
  // Never destroyed: tensors held by other static objects may be freed after main returns.
  static BlockCache* cache = new BlockCache(64 << 10, size_t{512} << 20);
  return *cache;
}

}  // namespace tg::cpu
