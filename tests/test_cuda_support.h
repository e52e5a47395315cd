// Helpers for the CUDA test programs (tests/test_cuda_*.cpp). Each test case starts with
// TG_REQUIRE_CUDA_DEVICE(): on a machine without a usable GPU the case is skipped with a warning
// (Catch2 2.13 has no SKIP), and the program ends with one line counting the skipped cases,
// which CTest reads to report the program as skipped (tests/CMakeLists.txt).
#pragma once

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "core/error.h"
#include "kernels/backend.h"

namespace tg::testing {

// Why the CUDA tests cannot run here ("" when cuda:0 is usable), as backend_for says it.
inline const std::string& cuda_unavailable_reason() {
  static const std::string reason = [] {
    try {
      backend_for(Device::cuda(0));
      return std::string();
    } catch (const Error& e) {
      return std::string(e.what());
    }
  }();
  return reason;
}

// Counts skipped cases; the count is printed when the program exits, after Catch's summary.
struct CudaSkips {
  int count = 0;
  std::string reason;
  ~CudaSkips() {
    if (count > 0)
      std::printf("%d CUDA test case%s skipped: %s\n", count, count == 1 ? "" : "s",
                  reason.c_str());
  }
};

inline CudaSkips& cuda_skips() {
  static CudaSkips skips;
  return skips;
}

}  // namespace tg::testing

// Returns from the test case, visibly, when there is no usable CUDA device.
#define TG_REQUIRE_CUDA_DEVICE()                                                   \
  do {                                                                             \
    const std::string& tg_cuda_reason_ = tg::testing::cuda_unavailable_reason();   \
    if (!tg_cuda_reason_.empty()) {                                                \
      WARN("skipped: " << tg_cuda_reason_);                                        \
      ++tg::testing::cuda_skips().count;                                           \
      tg::testing::cuda_skips().reason = tg_cuda_reason_;                          \
      return;                                                                      \
    }                                                                              \
  } while (false)
