// CPU epilogue of a linear layer: bias add and activation fused into one pass over the GEMM's
// output, and the backward pass that also sums the bias gradient.
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg {

using namespace cpu;

namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr int64_t kRowBlock = 64;  // rows per bias-gradient partial sum (fixed: deterministic)

// The same expressions as the unary kernels, so the fused layer matches relu(x @ W + b) exactly.
template <Activation act, typename T>
T activate(T x) {
  switch (act) {
    case Activation::Identity:
      return x;
    case Activation::Relu:
      return x < T(0) ? T(0) : x;  // NaN stays NaN
    case Activation::Gelu:
      return static_cast<T>(0.5 * x * (1.0 + std::erf(x * kInvSqrt2)));
    case Activation::Square:
      return x * x;
  }
  return x;
}

template <Activation act, typename T>
T activation_grad(T dy, T saved) {
  switch (act) {
    case Activation::Identity:
      return dy;
    case Activation::Relu:
      return saved <= T(0) ? T(0) : dy;  // NaN passes the gradient, as Step
    case Activation::Gelu: {
      const double cdf = 0.5 * (1.0 + std::erf(saved * kInvSqrt2));
      const double pdf = kInvSqrt2Pi * std::exp(-0.5 * double(saved) * double(saved));
      return dy * static_cast<T>(cdf + saved * pdf);
    }
    case Activation::Square:
      return dy * (saved + saved);
  }
  return dy;
}

}  // namespace

void CpuBackend::bias_activation(const Tensor& x, const Tensor& bias_in, Activation act,
                                 const Tensor& pre, const Tensor& y) {
  check(x.dim() == 2 && x.is_contiguous(), "bias_activation: x must be contiguous [N, D], got ",
        shape_str(x.shape()));
  const Tensor bias = bias_in.defined() ? contiguous_copy_if_needed(bias_in) : bias_in;
  const int64_t rows = x.size(0), cols = x.size(1);
  dispatch_floating(x.dtype(), "bias_activation", [&]<typename T>() {
    dispatch_activation(act, [&]<Activation kAct>() {
      const T* in = x.data<T>();
      // No bias adds zeros: one loop shape for both cases.
      const std::vector<T> zero_bias(bias.defined() ? 0 : static_cast<size_t>(cols), T(0));
      const T* __restrict b = bias.defined() ? bias.data<T>() : zero_bias.data();
      T* pre_out = pre.defined() ? pre.data<T>() : nullptr;
      T* y_out = y.defined() ? y.data<T>() : nullptr;
      parallel_for(
          rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(cols, 1)),
          [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
              const int64_t at = r * cols;
              // The loops take their pointers apart from any alias of x, so that each vectorises.
              if (y_out == in && !pre_out) {  // in place: x = act(x + b)
                T* __restrict io = y_out + at;
                for (int64_t c = 0; c < cols; ++c) io[c] = activate<kAct>(io[c] + b[c]);
              } else if (pre_out == in && y_out) {  // x = x + b in place, and y = act(x) beside it
                T* __restrict io = pre_out + at;
                T* __restrict yr = y_out + at;
                for (int64_t c = 0; c < cols; ++c) {
                  const T v = io[c] + b[c];
                  io[c] = v;
                  yr[c] = activate<kAct>(v);
                }
              } else {
                for (int64_t c = 0; c < cols; ++c) {
                  const T v = in[at + c] + b[c];
                  if (pre_out) pre_out[at + c] = v;
                  if (y_out) y_out[at + c] = activate<kAct>(v);
                }
              }
            }
          });
    });
  });
}

Tensor CpuBackend::activation_backward(const Tensor& dy, const Tensor& saved, Activation act,
                                       const Tensor& dbias) {
  check(dy.dim() == 2 && dy.is_contiguous() && saved.shape() == dy.shape() && saved.is_contiguous(),
        "activation_backward: dy ", shape_str(dy.shape()), " and saved ", shape_str(saved.shape()),
        " must be contiguous [N, D] of one shape");
  const int64_t rows = dy.size(0), cols = dy.size(1);
  Tensor dpre = Tensor::empty(dy.shape(), dy.dtype());
  dispatch_floating(dy.dtype(), "activation_backward", [&]<typename T>() {
    dispatch_activation(act, [&]<Activation kAct>() {
      const T* g = dy.data<T>();
      const T* s = saved.data<T>();
      T* out = dpre.data<T>();
      const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
      std::vector<T> partial(dbias.defined() ? static_cast<size_t>(blocks * cols) : 0, T(0));
      parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t blk = b0; blk < b1; ++blk) {
          T* __restrict acc = partial.empty() ? nullptr : partial.data() + blk * cols;
          for (int64_t r = blk * kRowBlock; r < std::min(rows, (blk + 1) * kRowBlock); ++r) {
            const T* __restrict gr = g + r * cols;
            const T* __restrict sr = s + r * cols;
            T* __restrict o = out + r * cols;
            for (int64_t c = 0; c < cols; ++c) o[c] = activation_grad<kAct>(gr[c], sr[c]);
            if (acc)
              for (int64_t c = 0; c < cols; ++c) acc[c] += o[c];
          }
        }
      });
      if (dbias.defined()) {
        T* db = dbias.data<T>();
        for (int64_t c = 0; c < cols; ++c) db[c] = T(0);
        for (int64_t blk = 0; blk < blocks; ++blk)
          for (int64_t c = 0; c < cols; ++c) db[c] += partial[blk * cols + c];
      }
    });
  });
  return dpre;
}

}  // namespace tg
