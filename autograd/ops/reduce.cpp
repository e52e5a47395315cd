// Reductions over any set of axes (sum, mean, max, argmax), with keepdim, and their backwards:
// the gradient of a reduction is broadcast back over the reduced axes.
#include <algorithm>

#include "autograd/ops/common.h"

namespace tg {

namespace {

// The output shape without the reduced axes (keepdim = false).
Shape drop_axes(const Shape& shape, const std::vector<int>& axes) {
  Shape out;
  for (size_t i = 0; i < shape.size(); ++i)
    if (std::find(axes.begin(), axes.end(), static_cast<int>(i)) == axes.end())
      out.push_back(shape[i]);
  return out;
}

Shape keep_axes(const Shape& shape, const std::vector<int>& axes) {
  Shape out = shape;
  for (int a : axes) out[a] = 1;
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  const std::vector<int> ax = normalize_axes(axes, x.shape(), "sum");
  Tensor out = backend_for(x.device()).reduce(ReduceOp::Sum, x, ax);
  if (!keepdim) out = out.view(drop_axes(x.shape(), ax));
  if (!needs_grad({&x})) return out;
  return record(out, "SumBackward",
                [in_shape = x.shape(), ax](const Tensor& g) -> std::vector<Tensor> {
                  return {g.reshape(keep_axes(in_shape, ax)).expand(in_shape)};
                },
                {&x});
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  check_floating("mean", x);
  const std::vector<int> ax = normalize_axes(axes, x.shape(), "mean");
  int64_t count = 1;
  for (int a : ax) count *= x.shape()[a];
  check(count > 0, "mean: ", shape_str(x.shape()), ": mean over no elements");
  // One pass (ReduceOp::Mean), the same bits as scale(sum(x), 1 / count).
  Tensor out = backend_for(x.device()).reduce(ReduceOp::Mean, x, ax);
  if (!keepdim) out = out.view(drop_axes(x.shape(), ax));
  if (!needs_grad({&x})) return out;
  return record(out, "MeanBackward",
                [in_shape = x.shape(), ax, factor = 1.0 / static_cast<double>(count)](
                    const Tensor& g) -> std::vector<Tensor> {
                  return {scale(g, factor).reshape(keep_axes(in_shape, ax)).expand(in_shape)};
                },
                {&x});
}

Tensor max(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  const std::vector<int> ax = normalize_axes(axes, x.shape(), "max");
  for (int a : ax)
    check(x.shape()[a] > 0, "max: ", shape_str(x.shape()), ": axis ", a, " is empty");
  Tensor kept = backend_for(x.device()).reduce(ReduceOp::Max, x, ax);
  Tensor out = keepdim ? kept : kept.view(drop_axes(x.shape(), ax));
  if (!needs_grad({&x})) return out;
  // The gradient goes to the elements equal to the maximum, split evenly among ties.
  return record(out, "MaxBackward",
                [x = save(x), kept = save(kept), ax](const Tensor& g) -> std::vector<Tensor> {
                  const Shape keep_shape = keep_axes(x.shape(), ax);
                  Tensor is_max = eq(x, kept);
                  std::vector<int64_t> axes(ax.begin(), ax.end());
                  Tensor ties = sum(is_max, axes, /*keepdim=*/true);
                  return {is_max * (g.reshape(keep_shape) / ties)};
                },
                {&x});
}

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  const int a = normalize_axis(axis, x.shape(), "argmax");
  check(x.shape()[a] > 0, "argmax: ", shape_str(x.shape()), ": axis ", a, " is empty");
  Tensor out = backend_for(x.device()).argmax(x, a);
  return keepdim ? out : out.squeeze(a);
}

Tensor Tensor::sum(const std::vector<int64_t>& axes, bool keepdim) const {
  return tg::sum(*this, axes, keepdim);
}
Tensor Tensor::mean(const std::vector<int64_t>& axes, bool keepdim) const {
  return tg::mean(*this, axes, keepdim);
}
Tensor Tensor::max(const std::vector<int64_t>& axes, bool keepdim) const {
  return tg::max(*this, axes, keepdim);
}
Tensor Tensor::argmax(int64_t axis, bool keepdim) const { return tg::argmax(*this, axis, keepdim); }

}  // namespace tg
