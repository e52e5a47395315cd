// CPU elementwise primitives: unary math, binary arithmetic and comparisons over strided
// (possibly broadcast) operands, and masked fill.
#include <cmath>

#include "core/wrapping.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg {

using namespace cpu;

namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

template <typename T>
T apply_unary(UnaryOp op, T x, double param) {
  switch (op) {
    case UnaryOp::Neg: return wrapping_neg(x);
    case UnaryOp::Exp: return static_cast<T>(std::exp(x));
    case UnaryOp::Log: return static_cast<T>(std::log(x));
    case UnaryOp::Sqrt: return static_cast<T>(std::sqrt(x));
    case UnaryOp::Tanh: return static_cast<T>(std::tanh(x));
    case UnaryOp::Relu: return x < 0 ? T(0) : x;  // NaN stays NaN
    case UnaryOp::Step: return x <= 0 ? T(0) : T(1);  // NaN passes, as in PyTorch
    case UnaryOp::Gelu: return static_cast<T>(0.5 * x * (1.0 + std::erf(x * kInvSqrt2)));
    case UnaryOp::GeluGrad: {
      const double cdf = 0.5 * (1.0 + std::erf(x * kInvSqrt2));
      const double pdf = kInvSqrt2Pi * std::exp(-0.5 * double(x) * double(x));
      return static_cast<T>(cdf + x * pdf);
    }
    case UnaryOp::PowScalar: return static_cast<T>(std::pow(x, param));
    case UnaryOp::Scale: return static_cast<T>(x * param);
  }
  return x;
}

template <typename T>
T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return wrapping_add(a, b);
    case BinaryOp::Sub: return wrapping_sub(a, b);
    case BinaryOp::Mul: return wrapping_mul(a, b);
    case BinaryOp::Div: return wrapping_div(a, b);
    case BinaryOp::Eq: return a == b;
    case BinaryOp::Ne: return a != b;
    case BinaryOp::Lt: return a < b;
    case BinaryOp::Le: return a <= b;
    case BinaryOp::Gt: return a > b;
    case BinaryOp::Ge: return a >= b;
  }
  return a;
}

}  // namespace

Tensor CpuBackend::unary(UnaryOp op, const Tensor& x, double param) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<typename T>() {
    const T* in = x.data<T>();
    T* o = out.data<T>();
    for_each_row<2>(x.shape(), {x.strides(), out.strides()},
                    [&](const auto& off, int64_t n, const auto& step) {
                      // The switch sits outside the loop so each loop body is one op the compiler
                      // can vectorise.
                      switch (op) {
#define TG_UNARY_CASE(OP)                                                                   \
  case UnaryOp::OP:                                                                         \
    for (int64_t i = 0; i < n; ++i)                                                         \
      o[off[1] + i * step[1]] = apply_unary<T>(UnaryOp::OP, in[off[0] + i * step[0]], param); \
    break;
                        TG_UNARY_CASE(Neg) TG_UNARY_CASE(Exp) TG_UNARY_CASE(Log)
                        TG_UNARY_CASE(Sqrt) TG_UNARY_CASE(Tanh) TG_UNARY_CASE(Relu)
                        TG_UNARY_CASE(Step) TG_UNARY_CASE(Gelu) TG_UNARY_CASE(GeluGrad)
                        TG_UNARY_CASE(PowScalar) TG_UNARY_CASE(Scale)
#undef TG_UNARY_CASE
                      }
                    });
  });
  return out;
}

Tensor CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch(a.dtype(), [&]<typename T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    if constexpr (std::is_integral_v<T>) {
      if (op == BinaryOp::Div) {
        const Tensor dense = contiguous_copy_if_needed(b);
        const T* d = dense.data<T>();
        for (int64_t i = 0; i < dense.numel(); ++i)
          check(d[i] != 0, "div: integer division by zero (element ", i, " of the divisor)");
      }
    }
    T* o = out.data<T>();
    for_each_row<3>(a.shape(), {a.strides(), b.strides(), out.strides()},
                    [&](const auto& off, int64_t n, const auto& step) {
                      switch (op) {
#define TG_BINARY_CASE(OP)                                                                      \
  case BinaryOp::OP:                                                                            \
    for (int64_t i = 0; i < n; ++i)                                                             \
      o[off[2] + i * step[2]] =                                                                 \
          apply_binary<T>(BinaryOp::OP, pa[off[0] + i * step[0]], pb[off[1] + i * step[1]]);    \
    break;
                        TG_BINARY_CASE(Add) TG_BINARY_CASE(Sub) TG_BINARY_CASE(Mul)
                        TG_BINARY_CASE(Div) TG_BINARY_CASE(Eq) TG_BINARY_CASE(Ne)
                        TG_BINARY_CASE(Lt) TG_BINARY_CASE(Le) TG_BINARY_CASE(Gt)
                        TG_BINARY_CASE(Ge)
#undef TG_BINARY_CASE
                      }
                    });
  });
  return out;
}

Tensor CpuBackend::masked_fill(const Tensor& x, const Tensor& mask, double value) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<typename T>() {
    dispatch(mask.dtype(), [&]<typename M>() {
      const T* in = x.data<T>();
      const M* m = mask.data<M>();
      T* o = out.data<T>();
      const T fill = static_cast<T>(value);
      for_each_row<3>(x.shape(), {x.strides(), mask.strides(), out.strides()},
                      [&](const auto& off, int64_t n, const auto& step) {
                        for (int64_t i = 0; i < n; ++i)
                          o[off[2] + i * step[2]] =
                              m[off[1] + i * step[1]] != M(0) ? fill : in[off[0] + i * step[0]];
                      });
    });
  });
  return out;
}

}  // namespace tg
