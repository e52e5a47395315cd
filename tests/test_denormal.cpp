// set_flush_denormal: products below float's normal range become 0 on the calling thread and on
// the OpenMP workers, and the guard restores the previous mode.
#include <omp.h>

#include <catch2/catch.hpp>
#include <vector>

#include "core/denormal.h"

namespace {
// 1e-30 * 1e-10 = 1e-40 is a denormal float; volatile keeps the compiler from folding it.
float tiny_product() {
  volatile float a = 1e-30f, b = 1e-10f;
  return a * b;
}
}  // namespace

TEST_CASE("denormal: flushing zeroes denormal results on every thread, and the guard restores",
          "[denormal]") {
  if (!tg::set_flush_denormal(false)) {
    WARN("skipped: this CPU has no flush-to-zero mode");
    return;
  }
  REQUIRE_FALSE(tg::flush_denormal());
  CHECK(tiny_product() > 0);
  {
    const tg::FlushDenormalGuard guard;
    CHECK(tg::flush_denormal());
    CHECK(tiny_product() == 0);
    std::vector<float> per_thread(static_cast<size_t>(omp_get_max_threads()), 1);
#pragma omp parallel
    per_thread[static_cast<size_t>(omp_get_thread_num())] = tiny_product();
    for (float v : per_thread) CHECK(v == 0);
  }
  CHECK_FALSE(tg::flush_denormal());
  CHECK(tiny_product() > 0);
}
