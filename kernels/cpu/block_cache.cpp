// BlockCache: best-fit reuse of freed host blocks.
#include "kernels/cpu/block_cache.h"

#include <algorithm>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace tg::cpu {

namespace {
constexpr size_t kAlignment = 64;  // whole cache lines, and aligned AVX-512 loads
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Under AddressSanitizer a block's bytes past what was asked for, and a whole block while the
// cache holds it, are poisoned: a read past a tensor's end, or of a freed tensor, is reported as
// it would be with plain malloc, instead of landing in the block's slack or in a cached block.
#if defined(__SANITIZE_ADDRESS__)
void poison(void* block, size_t bytes) { ASAN_POISON_MEMORY_REGION(block, bytes); }
void unpoison(void* block, size_t bytes) { ASAN_UNPOISON_MEMORY_REGION(block, bytes); }
#else
void poison(void*, size_t) {}
void unpoison(void*, size_t) {}
#endif

// The block, usable for its first nbytes only.
void* handed_out(void* block, size_t nbytes, size_t capacity) {
  if (block == nullptr) return nullptr;
  unpoison(block, nbytes);
  poison(static_cast<char*>(block) + nbytes, capacity - nbytes);
  return block;
}
}  // namespace

BlockCache::~BlockCache() { clear(); }

void* BlockCache::allocate(size_t nbytes, size_t& capacity) {
  capacity = round_up(std::max<size_t>(nbytes, 1), kAlignment);
  if (capacity >= min_cached_) {
    // Large blocks come in page multiples, so near sizes share a class.
    capacity = round_up(capacity, 4096);
    if (void* block = free_.take(capacity)) return handed_out(block, nbytes, capacity);
  }
  return handed_out(std::aligned_alloc(kAlignment, capacity), nbytes, capacity);
}

void BlockCache::release(void* block, size_t capacity) {
  poison(block, capacity);  // before put(): another thread may take it from there at once
  if (capacity >= min_cached_ && free_.put(block, capacity)) return;
  unpoison(block, capacity);  // handed back to malloc whole
  std::free(block);
}

size_t BlockCache::cached_bytes() const { return free_.cached_bytes(); }

void BlockCache::clear() {
  size_t capacity = 0;
  while (void* block = free_.pop(capacity)) {
    unpoison(block, capacity);
    std::free(block);
  }
}

BlockCache& host_block_cache() {
  // Never destroyed: tensors held by other static objects may be freed after main returns.
  static BlockCache* cache = new BlockCache(64 << 10, size_t{512} << 20);
  return *cache;
}

}  // namespace tg::cpu
