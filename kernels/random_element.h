// Element i of a random fill (Backend::fill_random), one function for every backend: the CPU loop
// and the CUDA kernel both call it, so a (seed, counter) gives the same tensor on either device,
// and hence the same dropout mask.
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/random.h"
#include "kernels/backend.h"

namespace tg {

// Uniform: low a, high b. Normal: mean a, std b. DropoutMask: drop probability a.
template <typename T>
TG_HOST_DEVICE inline T random_element(RandomKind kind, uint64_t seed, uint64_t counter, int64_t i,
                                       double a, double b) {
  switch (kind) {
    case RandomKind::Uniform: {
      const uint32_t w = random_word(seed, counter, i);
      const double u = std::is_same_v<T, float> ? uniform_float(w) : uniform_double(w);
      return uniform_between<T>(a, b, u);
    }
    case RandomKind::Normal:
      return static_cast<T>(std::fma(b, normal_double(seed, counter, i), a));  // as uniform_between
    case RandomKind::DropoutMask: {
      const float u = uniform_float(random_word(seed, counter, i));
      return u >= a ? static_cast<T>(1.0 / (1.0 - a)) : T(0);
    }
  }
  return T(0);
}

}  // namespace tg
