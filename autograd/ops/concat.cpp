// Concatenation along an axis: each input is copied into its slice of the output, and each
// input's gradient is the matching slice of the output's gradient.
#include "autograd/ops/common.h"

namespace tg {

Tensor cat(const std::vector<Tensor>& tensors, int64_t axis) {
  check(!tensors.empty(), "cat: needs at least one tensor");
  const Tensor& first = tensors[0];
  const int a = normalize_axis(axis, first.shape(), "cat");
  Shape out_shape = first.shape();
  out_shape[a] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check_same_device_and_dtype("cat", first, t);
    bool compatible = t.dim() == first.dim();
    for (int64_t d = 0; compatible && d < t.dim(); ++d)
      compatible = d == a || t.shape()[d] == first.shape()[d];
    check(compatible, "cat: tensor ", i, " of shape ", shape_str(t.shape()),
          " does not match tensor 0 of shape ", shape_str(first.shape()), " outside axis ", a);
    out_shape[a] += t.shape()[a];
  }

  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  std::vector<int64_t> starts;
  int64_t start = 0;
  for (const Tensor& t : tensors) {
    starts.push_back(start);
    backend_for(out.device()).copy(t, out.slice(a, start, start + t.shape()[a]).detach());
    start += t.shape()[a];
  }

  bool any = false;
  for (const Tensor& t : tensors) any = any || needs_grad({&t});
  if (!any) return out;
  return record(out, "CatBackward",
                [a, starts, sizes = out_shape](const Tensor& g) -> std::vector<Tensor> {
                  std::vector<Tensor> grads;
                  for (size_t i = 0; i < starts.size(); ++i) {
                    const int64_t end = i + 1 < starts.size() ? starts[i + 1] : sizes[a];
                    grads.push_back(g.slice(a, starts[i], end));
                  }
                  return grads;
                },
                tensors);
}

}  // namespace tg
