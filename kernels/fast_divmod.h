// Division by a divisor fixed at launch, without the GPU's division routine: a GPU has no integer
// divide instruction, and a 64-bit `/` or `%` in a kernel is a call of some hundred instructions,
// which an element-per-thread kernel pays for every element. FastDivmod turns it into a multiply
// by a magic number, a high-half product and a shift (Granlund and Montgomery, "Division by
// invariant integers using multiplication", 1994; PyTorch's IntDivider is the same), exact for
// numerators below 2^31. The host finds the magic number once; kernels take the struct by value.
#pragma once

#include <cstdint>

#include "core/error.h"
#include "core/host_device.h"

namespace tg {

struct FastDivmod {
  uint32_t divisor = 1, multiplier = 0, shift = 0;

  FastDivmod() = default;
  // divisor in [1, 2^31 - 1].
  explicit FastDivmod(int64_t d) {
    check(d >= 1 && d <= INT32_MAX, "FastDivmod: divisor ", d, " is outside [1, 2^31 - 1]");
    divisor = static_cast<uint32_t>(d);
    while ((uint64_t{1} << shift) < divisor) ++shift;  // the least shift with 2^shift >= d
    // floor(2^32 (2^shift - d) / d) + 1 < 2^32, since 2^shift < 2 d.
    multiplier = static_cast<uint32_t>(
        ((uint64_t{1} << 32) * ((uint64_t{1} << shift) - divisor)) / divisor + 1);
  }

  // n / divisor, for n in [0, 2^31).
  TG_HOST_DEVICE uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t high = __umulhi(n, multiplier);
#else
    const auto high = static_cast<uint32_t>((uint64_t{n} * multiplier) >> 32);
#endif
    return (high + n) >> shift;  // high <= n < 2^31: no overflow
  }
  // n % divisor, given q = div(n).
  TG_HOST_DEVICE uint32_t mod(uint32_t n, uint32_t q) const { return n - q * divisor; }
};

}  // namespace tg
