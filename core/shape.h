// Shape arithmetic: element counts, contiguous strides, broadcasting and axis normalisation.
#pragma once

#include <cstdint>
#include <vector>

namespace tg {

using Shape = std::vector<int64_t>;    // sizes, outermost first
using Strides = std::vector<int64_t>;  // in elements, not bytes

int64_t numel(const Shape& shape);

// Row-major strides: the last axis is contiguous.
Strides contiguous_strides(const Shape& shape);

// The NumPy broadcast of two shapes; `op` names the caller in the error message.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Maps a possibly negative axis into [0, ndim), or throws naming `op`.
int normalize_axis(int64_t axis, int64_t ndim, const char* op);

// Normalised, sorted, duplicate-free axes; an empty list means every axis.
std::vector<int> normalize_axes(const std::vector<int64_t>& axes, int64_t ndim, const char* op);

// As above for an axis of a tensor of `shape`, which the error message names: "axis 2 is out of
// range" alone does not say which tensor was meant.
int normalize_axis(int64_t axis, const Shape& shape, const char* op);
std::vector<int> normalize_axes(const std::vector<int64_t>& axes, const Shape& shape, const char* op);

}  // namespace tg
