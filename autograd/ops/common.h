// Helpers shared by the op families: input checks and reducing a broadcast gradient.
#pragma once

#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/backend.h"

namespace tg {

// Both inputs on one device with one dtype, or an error naming the op and the shapes.
inline void check_same_device_and_dtype(const char* op, const Tensor& a, const Tensor& b) {
  check(a.device() == b.device(), op, ": ", shape_str(a.shape()), " on ", a.device().str(),
        " and ", shape_str(b.shape()), " on ", b.device().str(), ": tensors are on different devices");
  check(a.dtype() == b.dtype(), op, ": ", shape_str(a.shape()), " ", dtype_name(a.dtype()),
        " and ", shape_str(b.shape()), " ", dtype_name(b.dtype()), ": dtypes differ (convert one with .to())");
}

inline void check_floating(const char* op, const Tensor& x) {
  check(is_floating(x.dtype()), op, ": needs a float tensor, got ", dtype_name(x.dtype()),
        " of shape ", shape_str(x.shape()));
}

// Attention's row indices: int64 q_rows [B, Tq] and kv_rows [B, T] on `device`, Tq <= T, or an
// error naming `op` (autograd/ops/attention.cpp).
void check_attention_rows(const char* op, const Tensor& q_rows, const Tensor& kv_rows,
                          Device device);

// The gradient of a broadcast: sum `grad` over the axes that broadcasting added or stretched, so
// that it has `shape` again.
Tensor sum_to(const Tensor& grad, const Shape& shape);

}  // namespace tg
