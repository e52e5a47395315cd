// Arithmetic on int64 tensors wraps around in two's complement, as it does in PyTorch. C++
// leaves signed overflow undefined (an optimiser may assume it never happens), and x86's
// division traps on INT64_MIN / -1 (SIGFPE), so the elementwise and sum kernels of both
// backends compute through these. For floating types they are the plain operations.
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/host_device.h"

namespace tg {

template <typename T>
TG_HOST_DEVICE inline T wrapping_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(uint64_t(a) + uint64_t(b));
  else return a + b;
}

template <typename T>
TG_HOST_DEVICE inline T wrapping_sub(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(uint64_t(a) - uint64_t(b));
  else return a - b;
}

template <typename T>
TG_HOST_DEVICE inline T wrapping_mul(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(uint64_t(a) * uint64_t(b));
  else return a * b;
}

template <typename T>
TG_HOST_DEVICE inline T wrapping_neg(T x) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(uint64_t{0} - uint64_t(x));
  else return -x;
}

// Integer divisors are checked for zero before a kernel runs; the one other quotient that does
// not fit, INT64_MIN / -1, wraps to INT64_MIN like the others.
template <typename T>
TG_HOST_DEVICE inline T wrapping_div(T a, T b) {
  if constexpr (std::is_integral_v<T>) return b == T(-1) ? wrapping_neg(a) : a / b;
  else return a / b;
}

}  // namespace tg
