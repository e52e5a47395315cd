// The fused table attention's outputs, as both backends' forward makes them
// (kernels/cpu/attention.cpp, kernels/cuda/attention.cu): z and the pattern for a layout, and z
// alone where there are no scores for a kernel to compute. Host code.
#pragma once

#include "kernels/attention_layout.h"
#include "kernels/backend.h"

namespace tg {

// z ([B, Tq, Dv] with sum_heads, else [B, Tq, H, Dv]) and the pattern [B, H, Tq, T] of `dtype` on
// `backend`'s device. Returns false where the pattern is empty (no heads, queries or keys), after
// finishing z itself: 0 (a sum over no heads), plus the residual's rows q_rows where there is a
// residual; true where the kernels are still to fill both.
inline bool make_attention_outputs(Backend& backend, const AttentionLayout& at, DType dtype,
                                   const Tensor& residual, const Tensor& q_rows, Tensor& z,
                                   Tensor& pattern) {
  const Device device = backend.device();
  z = at.sum_heads ? Tensor::empty({at.batch, at.queries, at.value_size}, dtype, device)
                   : Tensor::empty({at.batch, at.queries, at.heads, at.value_size}, dtype, device);
  pattern = Tensor::empty({at.batch, at.heads, at.queries, at.keys}, dtype, device);
  if (pattern.numel() > 0) return true;
  if (z.numel() == 0) return false;
  backend.fill(z, 0);  // sum_heads over no heads
  if (residual.defined())
    z = backend.binary(BinaryOp::Add, backend.index_select(residual, q_rows), z);
  return false;
}

}  // namespace tg
