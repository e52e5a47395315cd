// View ops (reshape, transpose, permute, slice, expand, ...): new geometry over the same storage,
// and their backwards, which map the gradient back to the input's geometry. Also contiguous(),
// dtype conversion and clone(), the copies that views sometimes need.
#include <algorithm>
#include <numeric>

#include "autograd/ops/common.h"
#include "core/factories.h"

namespace tg {

namespace {

// Resolves one -1 in a requested shape from the element count.
Shape infer_shape(const Shape& requested, int64_t count, const Shape& from, const char* op) {
  Shape shape = requested;
  Shape known_sizes;
  int infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      check(infer_at < 0, op, ": ", shape_str(from), " -> ", shape_str(requested),
            ": only one size may be -1");
      infer_at = static_cast<int>(i);
    } else {
      check(shape[i] >= 0, op, ": ", shape_str(from), " -> ", shape_str(requested),
            ": negative size");
      known_sizes.push_back(shape[i]);
    }
  }
  int64_t known = 0;
  try {
    known = numel(known_sizes);  // throws past int64, where a plain product would overflow
  } catch (const Error& e) {
    throw Error(cat(op, ": ", shape_str(from), " -> ", shape_str(requested), ": ", e.what()));
  }
  if (infer_at >= 0) {
    check(known != 0 && count % known == 0, op, ": ", shape_str(from), " -> ",
          shape_str(requested), ": cannot infer the -1 size from ", count, " elements");
    shape[infer_at] = count / known;
  }
  check(numel(shape) == count, op, ": ", shape_str(from), " -> ", shape_str(requested), ": ",
        count, " elements do not fit ", numel(shape));
  return shape;
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  const Shape shape = infer_shape(requested, numel(), this->shape(), "view");
  check(is_contiguous(), "view: ", shape_str(this->shape()), " with strides ", shape_str(strides()),
        " is not contiguous; use reshape() or contiguous() first");
  Tensor out = make_view(*this, shape, contiguous_strides(shape), offset());
  if (!needs_grad({this})) return out;
  return record(out, "ViewBackward",
                [in_shape = this->shape()](const Tensor& g) -> std::vector<Tensor> {
                  return {g.reshape(in_shape)};
                },
                {this});
}

Tensor Tensor::reshape(const Shape& requested) const {
  const Shape shape = infer_shape(requested, numel(), this->shape(), "reshape");
  return is_contiguous() ? view(shape) : contiguous().view(shape);
}

Tensor Tensor::permute(const std::vector<int64_t>& order) const {
  check(static_cast<int64_t>(order.size()) == dim(), "permute: ", shape_str(shape()),
        ": order ", shape_str(order), " must list each of the ", dim(), " axes once");
  std::vector<int64_t> axes;
  for (int64_t a : order) axes.push_back(normalize_axis(a, shape(), "permute"));
  std::vector<int64_t> inverse(axes.size(), -1);
  for (size_t i = 0; i < axes.size(); ++i) {
    check(inverse[axes[i]] < 0, "permute: ", shape_str(shape()), ": order ", shape_str(order),
          " repeats axis ", axes[i]);
    inverse[axes[i]] = static_cast<int64_t>(i);
  }
  Shape new_shape;
  Strides new_strides;
  for (int64_t a : axes) {
    new_shape.push_back(shape()[a]);
    new_strides.push_back(strides()[a]);
  }
  Tensor out = make_view(*this, new_shape, new_strides, offset());
  if (!needs_grad({this})) return out;
  return record(out, "PermuteBackward",
                [inverse](const Tensor& g) -> std::vector<Tensor> { return {g.permute(inverse)}; },
                {this});
}

Tensor Tensor::transpose(int64_t axis0, int64_t axis1) const {
  std::vector<int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_axis(axis0, shape(), "transpose")],
            order[normalize_axis(axis1, shape(), "transpose")]);
  return permute(order);
}

Tensor Tensor::slice(int64_t axis, int64_t start, int64_t end, int64_t step) const {
  const int a = normalize_axis(axis, shape(), "slice");
  const int64_t n = shape()[a];
  check(step > 0, "slice: step must be positive, got ", step);
  // Python semantics: negative indices count from the end, out-of-range bounds are clamped.
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape new_shape = shape();
  Strides new_strides = strides();
  new_shape[a] = end == start ? 0 : 1 + (end - start - 1) / step;  // (no overflow for any step)
  // Two elements or more: step < n, so stride * step fits as the axis's span does. The stride of
  // one element never matters, and multiplying it by a huge step could overflow.
  if (new_shape[a] > 1) new_strides[a] *= step;
  Tensor out = make_view(*this, new_shape, new_strides, offset() + start * strides()[a]);
  if (!needs_grad({this})) return out;
  return record(out, "SliceBackward",
                [in_shape = shape(), a, start, end, step](const Tensor& g) -> std::vector<Tensor> {
                  if (g.shape() == in_shape) return {g};  // the whole tensor: nothing to pad
                  Tensor grad = zeros(in_shape, g.dtype(), g.device());
                  grad.slice(a, start, end, step).copy_(g);
                  return {grad};
                },
                {this});
}

Tensor Tensor::select(int64_t axis, int64_t index) const {
  const int a = normalize_axis(axis, shape(), "select");
  const int64_t n = shape()[a];
  check(index >= -n && index < n, "select: index ", index, " is out of range for axis ", a,
        " of size ", n, " in ", shape_str(shape()));
  if (index < 0) index += n;
  return slice(a, index, index + 1).squeeze(a);
}

Tensor Tensor::expand(const Shape& target) const {
  check(target.size() >= shape().size(), "expand: ", shape_str(shape()), " -> ",
        shape_str(target), ": cannot drop axes");
  for (int64_t d : target)
    check(d >= 0, "expand: ", shape_str(shape()), " -> ", shape_str(target), ": negative size");
  const size_t lead = target.size() - shape().size();
  Strides new_strides(target.size(), 0);
  for (size_t i = 0; i < shape().size(); ++i) {
    const int64_t have = shape()[i], want = target[lead + i];
    check(have == want || have == 1, "expand: ", shape_str(shape()), " -> ", shape_str(target),
          ": axis ", i, " of size ", have, " cannot become ", want);
    new_strides[lead + i] = have == want ? strides()[i] : 0;  // stride 0 repeats the element
  }
  if (target == shape()) return *this;
  Tensor out = make_view(*this, target, new_strides, offset());
  if (!needs_grad({this})) return out;
  return record(out, "ExpandBackward",
                [in_shape = shape()](const Tensor& g) -> std::vector<Tensor> {
                  return {sum_to(g, in_shape)};
                },
                {this});
}

Tensor Tensor::squeeze(int64_t axis) const {
  const int a = normalize_axis(axis, shape(), "squeeze");
  check(shape()[a] == 1, "squeeze: axis ", a, " of ", shape_str(shape()), " has size ",
        shape()[a], ", not 1");
  Shape new_shape = shape();
  Strides new_strides = strides();
  new_shape.erase(new_shape.begin() + a);
  new_strides.erase(new_strides.begin() + a);
  Tensor out = make_view(*this, new_shape, new_strides, offset());
  if (!needs_grad({this})) return out;
  return record(out, "SqueezeBackward",
                [a](const Tensor& g) -> std::vector<Tensor> { return {g.unsqueeze(a)}; }, {this});
}

Tensor Tensor::unsqueeze(int64_t axis) const {
  // The new axis may go at any of dim() + 1 positions.
  check(axis >= -(dim() + 1) && axis <= dim(), "unsqueeze: axis ", axis,
        " is out of range for a tensor of shape ", shape_str(shape()));
  const int a = normalize_axis(axis, dim() + 1, "unsqueeze");
  Shape new_shape = shape();
  Strides new_strides = strides();
  new_shape.insert(new_shape.begin() + a, 1);
  const int64_t stride = a < dim() ? strides()[a] * shape()[a] : 1;
  new_strides.insert(new_strides.begin() + a, stride);
  Tensor out = make_view(*this, new_shape, new_strides, offset());
  if (!needs_grad({this})) return out;
  return record(out, "UnsqueezeBackward",
                [a](const Tensor& g) -> std::vector<Tensor> { return {g.squeeze(a)}; }, {this});
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  backend_for(device()).copy(*this, out);
  if (!needs_grad({this})) return out;
  return record(out, "CloneBackward",
                [](const Tensor& g) -> std::vector<Tensor> { return {g}; }, {this});
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), target, device());
  backend_for(device()).copy(*this, out);
  if (!needs_grad({this}) || !is_floating(target)) return out;
  return record(out, "ToBackward",
                [from = dtype()](const Tensor& g) -> std::vector<Tensor> { return {g.to(from)}; },
                {this});
}

}  // namespace tg
