// Matrix multiplication with batch broadcasting, and its backward:
//   C = A @ B   =>   dA = dC @ B^T,   dB = A^T @ dC   (each summed over broadcast batch axes).
#include <algorithm>

#include "autograd/ops/common.h"

namespace tg {

namespace {

// Both operands at least 2-D.
Tensor matmul_2d_or_more(const Tensor& a, const Tensor& b, const Shape& a_shape_for_errors,
                         const Shape& b_shape_for_errors) {
  const int64_t k_a = a.shape().back(), k_b = b.shape()[b.dim() - 2];
  check(k_a == k_b, "matmul: ", shape_str(a_shape_for_errors), " @ ", shape_str(b_shape_for_errors),
        ": inner dimensions differ (", k_a, " vs ", k_b, ")");
  const Shape a_batch(a.shape().begin(), a.shape().end() - 2);
  const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  // Compared here rather than by broadcast_shapes so that the message names both operands.
  for (size_t i = 1; i <= std::min(a_batch.size(), b_batch.size()); ++i) {
    const int64_t da = a_batch[a_batch.size() - i], db = b_batch[b_batch.size() - i];
    check(da == db || da == 1 || db == 1, "matmul: ", shape_str(a_shape_for_errors), " @ ",
          shape_str(b_shape_for_errors), ": batch dimensions cannot be broadcast (", da, " vs ",
          db, ")");
  }
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  Shape a_full = batch, b_full = batch;
  a_full.insert(a_full.end(), a.shape().end() - 2, a.shape().end());
  b_full.insert(b_full.end(), b.shape().end() - 2, b.shape().end());

  Tensor out = backend_for(a.device()).matmul(a.detach().expand(a_full), b.detach().expand(b_full));
  if (!needs_grad({&a, &b})) return out;
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(out, "MatmulBackward",
                [saved_a = gb ? save(a) : Tensor(), saved_b = ga ? save(b) : Tensor(),
                 sa = a.shape(), sb = b.shape()](const Tensor& g) -> std::vector<Tensor> {
                  return {saved_b.defined() ? sum_to(matmul(g, saved_b.transpose(-2, -1)), sa)
                                            : Tensor(),
                          saved_a.defined() ? sum_to(matmul(saved_a.transpose(-2, -1), g), sb)
                                            : Tensor()};
                },
                {&a, &b});
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_device_and_dtype("matmul", a, b);
  check_floating("matmul", a);
  check(a.dim() >= 1 && b.dim() >= 1, "matmul: ", shape_str(a.shape()), " @ ",
        shape_str(b.shape()), ": operands must have at least one dimension");
  // 1-D operands follow numpy.matmul: a vector on the left is a row, on the right a column, and
  // the added axis is removed from the result.
  const Tensor a2 = a.dim() == 1 ? a.unsqueeze(0) : a;
  const Tensor b2 = b.dim() == 1 ? b.unsqueeze(1) : b;
  Tensor out = matmul_2d_or_more(a2, b2, a.shape(), b.shape());
  if (b.dim() == 1) out = out.squeeze(-1);
  if (a.dim() == 1) out = out.squeeze(-2 + (b.dim() == 1 ? 1 : 0));
  return out;
}

Tensor Tensor::matmul(const Tensor& other) const { return tg::matmul(*this, other); }

}  // namespace tg
