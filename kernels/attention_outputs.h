// The fused table attention's outputs, as both backends' forward makes them
// (kernels/cpu/attention.cpp, kernels/cuda/attention.cu): z, the softmax statistics and the pattern
// when asked for, for a layout; z alone where there are no scores for a kernel to compute.
// Host code.
#pragma once

#include "kernels/attention_layout.h"
#include "kernels/backend.h"

namespace tg {

// z ([B, Tq, Dv] with sum_heads, else [B, Tq, H, Dv]), the softmax statistics [B, H, Tq, 2] and,
// when `pattern` is not null, the pattern [B, H, Tq, T], of `dtype` on `backend`'s device.
// Returns false where there are no scores (no heads, queries or keys), after finishing z itself:
// 0 (a sum over no heads), plus the residual's rows q_rows where there is a residual; true where
// the kernels are still to fill them.
inline bool make_attention_outputs(Backend& backend, const AttentionLayout& at, DType dtype,
                                   const Tensor& residual, const Tensor& q_rows, Tensor& z,
                                   Tensor& softmax_stats, Tensor* pattern) {
  const Device device = backend.device();
  z = at.sum_heads ? Tensor::empty({at.batch, at.queries, at.value_size}, dtype, device)
                   : Tensor::empty({at.batch, at.queries, at.heads, at.value_size}, dtype, device);
  softmax_stats = Tensor::empty({at.batch, at.heads, at.queries, 2}, dtype, device);
  if (pattern != nullptr)
    *pattern = Tensor::empty({at.batch, at.heads, at.queries, at.keys}, dtype, device);
  if (at.batch * at.heads * at.queries * at.keys > 0) return true;
  if (z.numel() == 0) return false;
  backend.fill(z, 0);  // sum_heads over no heads
  if (residual.defined())
    z = backend.binary(BinaryOp::Add, backend.index_select(residual, q_rows), z);
  return false;
}

// The backward's check that softmax_stats is what the forward made for this layout:
// [B, H, Tq, 2] of the tables' dtype.
inline void check_softmax_stats(const char* op, const Tensor& stats, const AttentionLayout& at,
                                DType dtype) {
  const Shape expected{at.batch, at.heads, at.queries, 2};
  check(stats.shape() == expected && stats.dtype() == dtype, op, ": softmax_stats must be ",
        dtype_name(dtype), " ", shape_str(expected), " (the forward's), got ",
        dtype_name(stats.dtype()), " ", shape_str(stats.shape()));
}

// The residual's contract (Backend::attention): only with sum_heads, [Rq, Dv] of the tables'
// dtype, a row per q_table row. Each kernel path adds it to the heads' sum; without that sum
// they would not agree on which head's output it goes to.
inline void check_attention_residual(const char* op, const Tensor& residual,
                                     const Tensor& q_table, const AttentionLayout& at) {
  if (!residual.defined()) return;
  check(at.sum_heads, op, ": a residual is added to the heads' sum: it needs sum_heads");
  const Shape expected{q_table.size(0), at.value_size};
  check(residual.shape() == expected && residual.dtype() == q_table.dtype(), op,
        ": residual must be ", dtype_name(q_table.dtype()), " ", shape_str(expected),
        " (a row per q_table row), got ", dtype_name(residual.dtype()), " ",
        shape_str(residual.shape()));
}

}  // namespace tg
