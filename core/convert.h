// Converting one value between the dtypes' C++ types, with every input defined.
//
// C++ leaves a float outside an integer type's range undefined (NaN, ±inf, |x| >= 2^63 for int64),
// and in practice x86 gives INT64_MIN for all of them while a GPU's cvt instruction saturates and
// gives 0 for NaN. Tensor conversions (copy_, add_, to(DType), to_vector) go through
// convert_value, which does what the GPU does, so both backends give the same integers.
// Scalars that the caller chose (fill_, full, masked_fill) are checked instead: an int64 tensor
// filled with NaN or 1e30 is a mistake worth an error, as in PyTorch.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/dtype.h"
#include "core/error.h"
#include "core/host_device.h"

namespace tg {

// static_cast, except that a float converted to an integer type truncates toward zero, saturates
// at the type's limits, and turns NaN into 0.
template <typename To, typename From>
TG_HOST_DEVICE inline To convert_value(From x) {
  if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    // -2^63 is exact in float and double; 2^63 = -lowest is the first value past the maximum.
    constexpr From lowest = static_cast<From>(std::numeric_limits<To>::min());
    if (x != x) return To(0);
    if (x <= lowest) return std::numeric_limits<To>::min();
    if (x >= -lowest) return std::numeric_limits<To>::max();
  }
  return static_cast<To>(x);
}

// Throws unless `value` can be stored in a tensor of `dtype` (float types take anything; int64
// takes finite values in its range, truncated toward zero as PyTorch's fill does).
inline void check_scalar_fits(double value, DType dtype, const char* op) {
  if (is_floating(dtype)) return;
  constexpr double limit = 9223372036854775808.0;  // 2^63
  check(value >= -limit && value < limit, op, ": value ", value, " cannot be stored in an ",
        dtype_name(dtype), " tensor");
}

}  // namespace tg
