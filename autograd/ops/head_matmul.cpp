// head_matmul: each head's rows times that head's own matrix, written in the [N, H, e] layout
// the attention tables use:
//   y[n, h, :] = x[n, h, :] @ W[h]        x [N, H, d], W [H, d, e] -> y [N, H, e]
// One batched product over the heads writes y in place (Backend::matmul_into, y's heads as the
// batch), where W as one [d, H * e] matrix would be a copy of W in every forward and a copy of
// its gradient back in every backward. x may be a broadcast view (the same row for every head,
// stride 0), whose gradient the expand's backward then sums over the heads. Backward:
//   dx[n, h, :] = dy[n, h, :] @ W[h]^T    (head_matmul again; W[h]^T is a transposed view)
//   dW[h] = x[:, h, :]^T @ dy[:, h, :]    (a batched matmul of two strided views)
#include "autograd/ops/common.h"

namespace tg {

Tensor head_matmul(const Tensor& x, const Tensor& W) {
  check_same_device_and_dtype("head_matmul", x, W);
  check_floating("head_matmul", x);
  check(x.dim() == 3 && W.dim() == 3 && x.size(1) == W.size(0) && x.size(2) == W.size(1),
        "head_matmul: x ", shape_str(x.shape()), " and W ", shape_str(W.shape()),
        ": must be [N, H, d] and [H, d, e]");
  Tensor y = Tensor::empty({x.size(0), x.size(1), W.size(2)}, x.dtype(), x.device());
  backend_for(x.device())
      .matmul_into(x.detach().permute({1, 0, 2}), W.detach(), y.permute({1, 0, 2}));
  if (!needs_grad({&x, &W})) return y;
  return record(y, "HeadMatmulBackward",
                [saved_x = W.requires_grad() ? save(x) : Tensor(),
                 saved_W = x.requires_grad() ? save(W) : Tensor()](
                    const Tensor& g) -> std::vector<Tensor> {
                  return {saved_W.defined() ? head_matmul(g, saved_W.transpose(1, 2)) : Tensor(),
                          saved_x.defined()
                              ? matmul(saved_x.permute({1, 2, 0}), g.permute({1, 0, 2}))
                              : Tensor()};
                },
                {&x, &W});
}

}  // namespace tg
