// The host block cache (and the FreeBlockList it shares with the CUDA allocator): a freed block
// of a size class is handed out again, best fit within 1.5x; small blocks and blocks over the cap
// go back to malloc.
#include <catch2/catch.hpp>

#include <cstdint>

#include "kernels/cpu/block_cache.h"
#include "kernels/free_block_list.h"

using tg::FreeBlockList;
using tg::cpu::BlockCache;

TEST_CASE("block cache: a freed block comes back for the next allocation of its size class",
          "[block_cache]") {
  BlockCache cache(64 << 10, 1 << 20);
  size_t capacity = 0;
  void* a = cache.allocate(100000, capacity);
  REQUIRE(a != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  CHECK(capacity >= 100000);
  cache.release(a, capacity);
  CHECK(cache.cached_bytes() == capacity);
  size_t again = 0;
  CHECK(cache.allocate(99000, again) == a);  // same page-rounded class
  CHECK(again == capacity);
  CHECK(cache.cached_bytes() == 0);
  cache.release(a, again);

  // Small blocks are not kept; neither is a block that would pass the cap.
  size_t small = 0;
  void* s = cache.allocate(100, small);
  cache.release(s, small);
  CHECK(cache.cached_bytes() == capacity);
  size_t big = 0;
  void* b = cache.allocate(2 << 20, big);
  cache.release(b, big);
  CHECK(cache.cached_bytes() == capacity);
  cache.clear();
  CHECK(cache.cached_bytes() == 0);
}

TEST_CASE("block cache: best fit, but never a block over 1.5x the request", "[block_cache]") {
  FreeBlockList list(1 << 30);
  int blocks[3];
  REQUIRE(list.put(&blocks[0], 1000));
  REQUIRE(list.put(&blocks[1], 1400));
  REQUIRE(list.put(&blocks[2], 4000));
  size_t want = 900;
  CHECK(list.take(want) == &blocks[0]);  // the smallest that fits
  CHECK(want == 1000);
  want = 1200;
  CHECK(list.take(want) == &blocks[1]);
  want = 2000;
  CHECK(list.take(want) == nullptr);  // 4000 is more than 1.5 x 2000
  CHECK(list.cached_bytes() == 4000);
  size_t popped = 0;
  CHECK(list.pop(popped) == &blocks[2]);
  CHECK(popped == 4000);
  CHECK(list.pop(popped) == nullptr);
  FreeBlockList capped(1000);
  CHECK_FALSE(capped.put(&blocks[0], 1001));
}
