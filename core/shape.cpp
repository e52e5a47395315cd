// Shape arithmetic: element counts, contiguous strides, broadcasting and axis normalisation.
#include "core/shape.h"

#include <algorithm>

#include "core/error.h"

namespace tg {

// A shape whose element count int64 cannot hold is refused where it is counted: a wrapped count
// would make a tensor too small for its shape, and the first write past it corrupt memory.
// (Hot: the message is built only on failure, not as check()'s arguments.)
int64_t numel(const Shape& shape) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      throw Error(cat("shape ", shape_str(shape), " has more elements than int64 can count"));
  return n;
}

Strides contiguous_strides(const Shape& shape) {
  Strides strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    if (i > 0 && __builtin_mul_overflow(stride, std::max<int64_t>(shape[i], 1), &stride))
      throw Error(cat("shape ", shape_str(shape), " has strides larger than int64 can hold"));
  }
  return strides;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t ndim = std::max(a.size(), b.size());
  Shape out(ndim);
  for (size_t i = 0; i < ndim; ++i) {
    // Align from the right, as NumPy does.
    const int64_t da = i < ndim - a.size() ? 1 : a[i - (ndim - a.size())];
    const int64_t db = i < ndim - b.size() ? 1 : b[i - (ndim - b.size())];
    if (da != db && da != 1 && db != 1)  // (hot: the message is built only on failure)
      throw Error(cat(op, ": shapes ", shape_str(a), " and ", shape_str(b),
                      " cannot be broadcast (axis ", i, ": ", da, " vs ", db, ")"));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int normalize_axis(int64_t axis, int64_t ndim, const char* op) {
  check(axis >= -ndim && axis < ndim, op, ": axis ", axis, " is out of range for a tensor with ",
        ndim, " dimension", ndim == 1 ? "" : "s");
  return static_cast<int>(axis < 0 ? axis + ndim : axis);
}

std::vector<int> normalize_axes(const std::vector<int64_t>& axes, int64_t ndim, const char* op) {
  std::vector<int> out;
  if (axes.empty()) {
    for (int i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int64_t a : axes) out.push_back(normalize_axis(a, ndim, op));
  std::sort(out.begin(), out.end());
  check(std::adjacent_find(out.begin(), out.end()) == out.end(), op, ": axis list ",
        shape_str(axes), " repeats an axis");
  return out;
}

int normalize_axis(int64_t axis, const Shape& shape, const char* op) {
  const auto ndim = static_cast<int64_t>(shape.size());
  check(axis >= -ndim && axis < ndim, op, ": axis ", axis, " is out of range for a tensor of shape ",
        shape_str(shape));
  return normalize_axis(axis, ndim, op);
}

std::vector<int> normalize_axes(const std::vector<int64_t>& axes, const Shape& shape, const char* op) {
  for (int64_t a : axes) normalize_axis(a, shape, op);  // range errors name the shape
  return normalize_axes(axes, static_cast<int64_t>(shape.size()), op);
}

}  // namespace tg
