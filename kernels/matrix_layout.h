// How a tensor's last two axes [rows, cols] lie in memory, for every backend's GEMM front end:
// row-major (used as is), column-major (a transposed view, used as the transposed operand, so
// backward's A^T and B^T cost no copies), or neither (the caller copies it contiguous first);
// and where batch matrix b of a tensor starts.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tg {

enum class MatrixLayout { RowMajor, ColMajor, Other };

// The layout of t's last two axes and its leading dimension: the stride between rows
// (row-major) or between columns (column-major).
inline MatrixLayout matrix_layout(const Tensor& t, int64_t& leading_dim) {
  const int64_t rows = t.shape()[t.dim() - 2], cols = t.shape()[t.dim() - 1];
  const int64_t s_row = t.strides()[t.dim() - 2], s_col = t.strides()[t.dim() - 1];
  if ((s_col == 1 || cols == 1) && (s_row >= cols || rows == 1)) {
    leading_dim = rows == 1 ? cols : s_row;
    return MatrixLayout::RowMajor;
  }
  if ((s_row == 1 || rows == 1) && (s_col >= rows || cols == 1)) {
    leading_dim = cols == 1 ? rows : s_col;
    return MatrixLayout::ColMajor;
  }
  return MatrixLayout::Other;
}

// Element offset of batch matrix `b` (row-major over the batch axes) in t.
inline int64_t batch_offset(const Tensor& t, int64_t b) {
  int64_t offset = 0;
  for (int64_t d = t.dim() - 3; d >= 0; --d) {
    offset += (b % t.shape()[d]) * t.strides()[d];
    b /= t.shape()[d];
  }
  return offset;
}

}  // namespace tg
