// Counter-based random numbers: Philox4x32-10 and the seeded Generator that hands out counters.
//
// Element i of a draw is a pure function of (seed, first counter of the draw, i), so results do not
// depend on the platform, the thread count or the device: the CPU and a GPU kernel that calls the
// same functions produce the same numbers.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace tg {

// Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC'11): Philox4x32 with 10 rounds.
TG_HOST_DEVICE inline void philox4x32_10(uint64_t seed, uint64_t counter, uint32_t out[4]) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = 0xD2511F53ull * c0;
    const uint64_t p1 = 0xCD9E8D57ull * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

// The i-th 32-bit word of a draw that starts at `counter`: four words per Philox block.
TG_HOST_DEVICE inline uint32_t random_word(uint64_t seed, uint64_t counter, int64_t i) {
  uint32_t block[4];
  philox4x32_10(seed, counter + static_cast<uint64_t>(i / 4), block);
  return block[i % 4];
}

// Uniform in [0, 1): the top 24 bits, exactly representable in float32.
TG_HOST_DEVICE inline float uniform_float(uint32_t word) {
  return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

// Uniform in [0, 1) with 32 bits, for float64 draws.
TG_HOST_DEVICE inline double uniform_double(uint32_t word) {
  return static_cast<double>(word) * (1.0 / 4294967296.0);
}

// low + (high - low) * u in T, for u in [0, 1). Rounding to T can land on high itself
// (1 + (1 - 2^-24) rounds to 2.0f), so such a value steps down to the largest T below high.
// The multiply-add is an explicit fma, one rounding on every device: written as a + b * c, GCC
// contracts it into an FMA on the host while nvcc, told not to (--fmad=false), rounds twice.
template <typename T>
TG_HOST_DEVICE inline T uniform_between(double low, double high, double u) {
  const T value = static_cast<T>(std::fma(high - low, u, low));
  const T top = static_cast<T>(high);
  return value >= top && high > low ? std::nextafter(top, static_cast<T>(low)) : value;
}

// Standard normal for element i of a draw: Box-Muller on the word pair (0,1) or (2,3) of its
// block, cos for even i and sin for odd i. Computed in double so that float32 results round the
// same way everywhere.
TG_HOST_DEVICE inline double normal_double(uint64_t seed, uint64_t counter, int64_t i) {
  uint32_t block[4];
  philox4x32_10(seed, counter + static_cast<uint64_t>(i / 4), block);
  const int pair = static_cast<int>(i % 4) / 2;
  const double u1 = (static_cast<double>(block[2 * pair]) + 1.0) * (1.0 / 4294967296.0);  // (0,1]
  const double u2 = static_cast<double>(block[2 * pair + 1]) * (1.0 / 4294967296.0);
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 6.283185307179586476925 * u2;
  return (i % 2 == 0) ? radius * std::cos(angle) : radius * std::sin(angle);
}

// A seed and a running counter. Each draw reserves the counters it uses, so consecutive draws are
// independent and a run is reproducible from (seed, offset) alone (checkpoints store both).
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }

  // Reserves counters for `n` words and returns the first counter of the block.
  uint64_t reserve(int64_t n) {
    const uint64_t first = offset_;
    offset_ += static_cast<uint64_t>((n + 3) / 4);
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide generator used when a caller passes none (like torch.manual_seed).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace tg
