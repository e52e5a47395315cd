// StridedIndexer: the element offsets of N strided views of one shape, computed on the device
// from a linear index. Passed to kernels by value (a few hundred bytes of kernel parameters), so
// a launch needs no device-side copy of shapes and strides. Include from .cu files only.
#pragma once

#include <array>
#include <cstdint>

#include "core/error.h"
#include "core/shape.h"

namespace tg::cuda {

// Views with more axes than this, after merging, are rejected (tinygrok's tensors have at most 5).
constexpr int kMaxDims = 8;

template <int N>
struct StridedIndexer {
  int ndim = 0;  // 0 for a single element
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  // offsets[k] = the element offset in view k of the element with row-major index `linear`.
  __host__ __device__ void offsets(int64_t linear, int64_t (&out)[N]) const {
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) out[k] += i * strides[k][d];
    }
  }
};

// The indexer of `shape` viewed through each operand's strides. Size-1 axes are dropped and
// neighbouring axes merged where every operand is contiguous across them (as the CPU's
// for_each_row does), so a contiguous tensor becomes one axis and costs one division per element.
template <int N>
StridedIndexer<N> make_indexer(const Shape& shape, const std::array<Strides, N>& strides,
                               const char* op) {
  StridedIndexer<N> ix;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    bool merge = ix.ndim > 0;
    for (int k = 0; k < N && merge; ++k)
      merge = ix.strides[k][ix.ndim - 1] == strides[k][i] * shape[i];
    if (merge) {
      ix.sizes[ix.ndim - 1] *= shape[i];
      for (int k = 0; k < N; ++k) ix.strides[k][ix.ndim - 1] = strides[k][i];
      continue;
    }
    check(ix.ndim < kMaxDims, op, ": cuda kernels take views of at most ", kMaxDims,
          " axes that cannot be merged, got shape ", shape_str(shape));
    ix.sizes[ix.ndim] = shape[i];
    for (int k = 0; k < N; ++k) ix.strides[k][ix.ndim] = strides[k][i];
    ++ix.ndim;
  }
  return ix;
}

}  // namespace tg::cuda
