// The front end every CUDA product shares (matmul, linear_forward, linear_backward): how two
// tensors become the operands of our SGEMM (sgemm/sgemm.h). A row-major view is used as is and a
// transposed view as the transposed operand (kernels/matrix_layout.h), so backward's A^T and B^T
// cost no copies; a view of any other layout is copied contiguous first.
#pragma once

#include <cstdint>
#include <limits>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/sgemm/sgemm.h"
#include "kernels/matrix_layout.h"

namespace tg::cuda {

// Replaces a or b by a contiguous copy where its last two axes are neither row- nor
// column-major; then the GemmArgs of out = op(a) @ op(b) over their last two axes, out
// contiguous [..., M, N]: sizes, the three pointers (each matrix's first), leading dimensions and
// transpositions. Batch 1, no epilogue, no masks: the caller sets those.
// A size as the SGEMM's int, refused past 2^31 - 1 rather than wrapped.
inline int gemm_size(int64_t size, const char* what) {
  check(size <= std::numeric_limits<int>::max(), "matmul: ", what, " of ", size,
        " is past the CUDA SGEMM's limit of 2^31 - 1");
  return static_cast<int>(size);
}

inline GemmArgs product_args(Tensor& a, Tensor& b, const Tensor& out) {
  int64_t lda = 0, ldb = 0;
  MatrixLayout la = matrix_layout(a, lda), lb = matrix_layout(b, ldb);
  if (la == MatrixLayout::Other) la = matrix_layout(a = contiguous_copy_if_needed(a), lda);
  if (lb == MatrixLayout::Other) lb = matrix_layout(b = contiguous_copy_if_needed(b), ldb);
  GemmArgs args;
  args.M = gemm_size(a.shape()[a.dim() - 2], "a row count");
  args.K = gemm_size(a.shape()[a.dim() - 1], "an inner size");
  args.N = gemm_size(b.shape()[b.dim() - 1], "a column count");
  args.A = a.data<float>();
  args.lda = lda;
  args.trans_a = la == MatrixLayout::ColMajor;
  args.B = b.data<float>();
  args.ldb = ldb;
  args.trans_b = lb == MatrixLayout::ColMajor;
  args.C = out.data<float>();
  args.ldc = args.N;
  return args;
}

}  // namespace tg::cuda
