// Elementwise ops with NumPy broadcasting, and their backwards. A binary op's gradient is summed
// back over the axes broadcasting stretched (sum_to).
#include <cmath>

#include "autograd/ops/common.h"
#include "core/convert.h"
#include "core/factories.h"

namespace tg {

namespace {

// The axes of grad that broadcasting to grad's shape stretched from `shape`.
std::vector<int> stretched_axes(const Tensor& grad, const Shape& shape) {
  const size_t lead = grad.shape().size() - shape.size();
  std::vector<int> axes;
  for (size_t i = 0; i < grad.shape().size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && grad.shape()[i] != 1))
      axes.push_back(static_cast<int>(i));
  return axes;
}

// sum_to(g, sa) and sum_to(g, sb) for an add's two inputs: when both were broadcast (the
// first layer's (position, token) table, W_E[None] + W_pos[:, None]), their sums of g come
// from one pass (Backend::reduce_sum_pair).
std::vector<Tensor> sum_to_each(const Tensor& g, const Shape& sa, const Shape& sb) {
  if (g.shape() == sa || g.shape() == sb) return {sum_to(g, sa), sum_to(g, sb)};
  auto [a, b] = backend_for(g.device())
                    .reduce_sum_pair(g, stretched_axes(g, sa), stretched_axes(g, sb));
  return {a.reshape(sa), b.reshape(sb)};
}

}  // namespace

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const std::vector<int> axes = stretched_axes(grad, shape);
  return sum(grad, std::vector<int64_t>(axes.begin(), axes.end()), /*keepdim=*/true)
      .reshape(shape);
}

namespace {

// Runs a binary primitive on the broadcast of a and b.
Tensor broadcast_binary(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_same_device_and_dtype(name, a, b);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  return backend_for(a.device()).binary(op, a.detach().expand(shape), b.detach().expand(shape));
}

Tensor unary_kernel(UnaryOp op, const Tensor& x, double param = 0) {
  return backend_for(x.device()).unary(op, x, param);
}

// A scalar operand as a 0-d tensor of t's dtype; a fractional scalar with an int64 tensor would be
// truncated silently, so it is an error instead.
Tensor scalar_like(double value, const Tensor& t) {
  check(is_floating(t.dtype()) || value == std::trunc(value), "scalar: ", value,
        " is not a whole number but the tensor of shape ", shape_str(t.shape()), " is ",
        dtype_name(t.dtype()), " (convert it with .to(DType::Float32) first)");
  check_scalar_fits(value, t.dtype(), "scalar");
  return scalar(value, t.dtype(), t.device());
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = broadcast_binary(BinaryOp::Add, "add", a, b);
  if (!needs_grad({&a, &b})) return out;
  return record(out, "AddBackward",
                [sa = a.shape(), sb = b.shape()](const Tensor& g) -> std::vector<Tensor> {
                  return sum_to_each(g, sa, sb);
                },
                {&a, &b});
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = broadcast_binary(BinaryOp::Sub, "sub", a, b);
  if (!needs_grad({&a, &b})) return out;
  return record(out, "SubBackward",
                [sa = a.shape(), sb = b.shape()](const Tensor& g) -> std::vector<Tensor> {
                  return {sum_to(g, sa), sum_to(-g, sb)};
                },
                {&a, &b});
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = broadcast_binary(BinaryOp::Mul, "mul", a, b);
  if (!needs_grad({&a, &b})) return out;
  // Each input's gradient needs the other input: save a only if b needs grad, and vice versa.
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(out, "MulBackward",
                [saved_a = gb ? save(a) : Tensor(), saved_b = ga ? save(b) : Tensor(),
                 sa = a.shape(), sb = b.shape()](const Tensor& g) -> std::vector<Tensor> {
                  return {saved_b.defined() ? sum_to(g * saved_b, sa) : Tensor(),
                          saved_a.defined() ? sum_to(g * saved_a, sb) : Tensor()};
                },
                {&a, &b});
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = broadcast_binary(BinaryOp::Div, "div", a, b);
  if (!needs_grad({&a, &b})) return out;
  // d(a/b)/da = 1/b;  d(a/b)/db = -a/b^2 = -out/b.
  const bool gb = b.requires_grad();
  return record(out, "DivBackward",
                [b = save(b), out = gb ? save(out) : Tensor(), sa = a.shape()](
                    const Tensor& g) -> std::vector<Tensor> {
                  Tensor g_over_b = g / b;
                  return {sum_to(g_over_b, sa),
                          out.defined() ? sum_to(-(g_over_b * out), b.shape()) : Tensor()};
                },
                {&a, &b});
}

Tensor neg(const Tensor& x) {
  Tensor out = unary_kernel(UnaryOp::Neg, x);
  if (!needs_grad({&x})) return out;
  return record(out, "NegBackward", [](const Tensor& g) -> std::vector<Tensor> { return {-g}; },
                {&x});
}

Tensor scale(const Tensor& x, double factor) {
  check_floating("scale", x);
  Tensor out = unary_kernel(UnaryOp::Scale, x, factor);
  if (!needs_grad({&x})) return out;
  return record(out, "ScaleBackward",
                [factor](const Tensor& g) -> std::vector<Tensor> { return {scale(g, factor)}; },
                {&x});
}

Tensor exp(const Tensor& x) {
  check_floating("exp", x);
  Tensor out = unary_kernel(UnaryOp::Exp, x);
  if (!needs_grad({&x})) return out;
  return record(out, "ExpBackward",
                [out = save(out)](const Tensor& g) -> std::vector<Tensor> { return {g * out}; },
                {&x});
}

Tensor log(const Tensor& x) {
  check_floating("log", x);
  Tensor out = unary_kernel(UnaryOp::Log, x);
  if (!needs_grad({&x})) return out;
  return record(out, "LogBackward",
                [x = save(x)](const Tensor& g) -> std::vector<Tensor> { return {g / x}; }, {&x});
}

Tensor sqrt(const Tensor& x) {
  check_floating("sqrt", x);
  Tensor out = unary_kernel(UnaryOp::Sqrt, x);
  if (!needs_grad({&x})) return out;
  return record(out, "SqrtBackward",
                [out = save(out)](const Tensor& g) -> std::vector<Tensor> {
                  return {g / scale(out, 2.0)};
                },
                {&x});
}

Tensor pow(const Tensor& x, double exponent) {
  check_floating("pow", x);
  Tensor out = unary_kernel(UnaryOp::PowScalar, x, exponent);
  if (!needs_grad({&x})) return out;
  return record(out, "PowBackward",
                [x = save(x), exponent](const Tensor& g) -> std::vector<Tensor> {
                  if (exponent == 0) return {zeros_like(g)};
                  return {g * scale(unary_kernel(UnaryOp::PowScalar, x, exponent - 1), exponent)};
                },
                {&x});
}

Tensor relu(const Tensor& x) {
  check_floating("relu", x);
  Tensor out = unary_kernel(UnaryOp::Relu, x);
  if (!needs_grad({&x})) return out;
  // The derivative at exactly 0 is taken as 0 and at NaN as 1, as in PyTorch (0 where out <= 0).
  // Saving the output suffices: out <= 0 exactly where x <= 0.
  return record(out, "ReluBackward",
                [out = save(out)](const Tensor& g) -> std::vector<Tensor> {
                  return {g * unary_kernel(UnaryOp::Step, out)};
                },
                {&x});
}

Tensor gelu(const Tensor& x) {
  check_floating("gelu", x);
  Tensor out = unary_kernel(UnaryOp::Gelu, x);
  if (!needs_grad({&x})) return out;
  return record(out, "GeluBackward",
                [x = save(x)](const Tensor& g) -> std::vector<Tensor> {
                  return {g * unary_kernel(UnaryOp::GeluGrad, x)};
                },
                {&x});
}

Tensor tanh(const Tensor& x) {
  check_floating("tanh", x);
  Tensor out = unary_kernel(UnaryOp::Tanh, x);
  if (!needs_grad({&x})) return out;
  return record(out, "TanhBackward",
                [out = save(out)](const Tensor& g) -> std::vector<Tensor> {
                  return {g * (1.0 - out * out)};  // d tanh = 1 - tanh^2
                },
                {&x});
}

Tensor eq(const Tensor& a, const Tensor& b) { return broadcast_binary(BinaryOp::Eq, "eq", a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return broadcast_binary(BinaryOp::Ne, "ne", a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return broadcast_binary(BinaryOp::Lt, "lt", a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return broadcast_binary(BinaryOp::Le, "le", a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return broadcast_binary(BinaryOp::Gt, "gt", a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return broadcast_binary(BinaryOp::Ge, "ge", a, b); }

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check(x.device() == mask.device(), "masked_fill: x on ", x.device().str(), ", mask on ",
        mask.device().str());
  const Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  check(shape == x.shape(), "masked_fill: mask ", shape_str(mask.shape()),
        " must broadcast to x ", shape_str(x.shape()), " without growing it");
  check_scalar_fits(value, x.dtype(), "masked_fill");
  const Tensor expanded_mask = mask.detach().expand(shape);
  Tensor out = backend_for(x.device()).masked_fill(x, expanded_mask, value);
  if (!needs_grad({&x})) return out;
  return record(out, "MaskedFillBackward",
                [mask = save(expanded_mask)](const Tensor& g) -> std::vector<Tensor> {
                  return {backend_for(g.device()).masked_fill(g, mask, 0.0)};
                },
                {&x});
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(a, b), b); }

Tensor Tensor::exp() const { return tg::exp(*this); }
Tensor Tensor::log() const { return tg::log(*this); }
Tensor Tensor::sqrt() const { return tg::sqrt(*this); }
Tensor Tensor::pow(double exponent) const { return tg::pow(*this, exponent); }
Tensor Tensor::relu() const { return tg::relu(*this); }
Tensor Tensor::tanh() const { return tg::tanh(*this); }

}  // namespace tg
