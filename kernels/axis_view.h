// A contiguous tensor seen along one axis, as [outer, n, inner]: line k (of outer * inner) starts
// at (k / inner) * n * inner + k % inner and steps by inner. Shared by the backends' softmax.
#pragma once

#include <cstdint>

#include "core/shape.h"

namespace tg {

struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
  int64_t lines() const { return outer * inner; }
};

inline AxisView axis_view(const Shape& shape, int axis) {
  AxisView v;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    if (d < axis) v.outer *= shape[d];
    else if (d == axis) v.n = shape[d];
    else v.inner *= shape[d];
  }
  return v;
}

}  // namespace tg
