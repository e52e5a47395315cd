// CUDA softmax and log-softmax along any axis, and their backwards (the CUDA twin of the first
// half of kernels/cpu/softmax.cpp; the fused cross-entropy is in cross_entropy.cu).
//
// As on the CPU, the contiguous input is viewed as [outer, n, inner]: each of its outer * inner
// lines runs along the axis with stride `inner`. One warp per line: lane l takes the elements
// i = l, l + 32, ... in increasing order, then an xor-shuffle butterfly combines the 32 lanes.
// A butterfly step adds each pair in both orders, which gives the same bits (addition is
// commutative), so every lane ends with the same total and writes its own elements; nothing
// depends on the launch geometry or on timing. The formulas are the CPU's: the maximum in T is
// subtracted before exp, sums run in double, and the outputs round once to T.
//
// The model's softmaxes run along the last axis (inner == 1), where a warp reads consecutive
// elements. Along another axis the warp's reads are `inner` apart: correct, not coalesced.
#include <cmath>
#include <cstdint>

#include "kernels/axis_view.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/warp.cuh"
#include "kernels/dispatch.h"

namespace tg::cuda {

namespace {


void check_axis(const Tensor& x, int axis, const char* op) {
  check(axis >= 0 && axis < x.dim(), op, ": axis ", axis, " is out of range for ",
        shape_str(x.shape()));
}

// Each warp visits its lines; all lanes of a warp see the same line, so the shuffles inside
// always have the full warp.
#define TG_FOR_EACH_WARP_LINE(line, lines)                                                   \
  const int lane = static_cast<int>(threadIdx.x) % kWarp;                                    \
  for (int64_t line = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; \
       line < (lines); line += static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp)

template <typename T>
__global__ void softmax_kernel(const T* x, T* out, int64_t lines, int64_t n, int64_t inner,
                               bool log) {
  kernel_prologue();
  TG_FOR_EACH_WARP_LINE(line, lines) {
    const int64_t base = (line / inner) * n * inner + line % inner;
    const T* in = x + base;
    T* o = out + base;
    // Subtract the maximum so exp never overflows.
    T peak = static_cast<T>(-HUGE_VAL);
    for (int64_t i = lane; i < n; i += kWarp) peak = max_of(peak, in[i * inner]);
    peak = warp_max(peak);
    double total = 0;
    for (int64_t i = lane; i < n; i += kWarp) total += ::exp(double(in[i * inner] - peak));
    total = warp_sum(total);
    if (log) {
      const double log_total = ::log(total);
      for (int64_t i = lane; i < n; i += kWarp)
        o[i * inner] = static_cast<T>(double(in[i * inner] - peak) - log_total);
    } else {
      for (int64_t i = lane; i < n; i += kWarp)
        o[i * inner] = static_cast<T>(::exp(double(in[i * inner] - peak)) / total);
    }
  }
}

// dx = y * (dy - sum(dy * y)) for softmax, dx = dy - exp(y) * sum(dy) for log-softmax.
template <typename T>
__global__ void softmax_backward_kernel(const T* y, const T* dy, T* dx, int64_t lines, int64_t n,
                                        int64_t inner, bool log) {
  kernel_prologue();
  TG_FOR_EACH_WARP_LINE(line, lines) {
    const int64_t base = (line / inner) * n * inner + line % inner;
    double dot = 0;
    for (int64_t i = lane; i < n; i += kWarp) {
      const int64_t j = base + i * inner;
      dot += log ? double(dy[j]) : double(dy[j]) * double(y[j]);
    }
    dot = warp_sum(dot);
    for (int64_t i = lane; i < n; i += kWarp) {
      const int64_t j = base + i * inner;
      dx[j] = log ? static_cast<T>(double(dy[j]) - ::exp(double(y[j])) * dot)
                  : static_cast<T>(double(y[j]) * (double(dy[j]) - dot));
    }
  }
}

#undef TG_FOR_EACH_WARP_LINE

// Threads for one warp per line (grid_for caps the grid; the loop covers the rest).
unsigned grid_for_warps(int64_t lines) { return grid_for(lines * kWarp); }

}  // namespace

Tensor CudaBackend::softmax(const Tensor& x_in, int axis, bool log) {
  check_on(x_in, device(), "softmax", "input");
  check_axis(x_in, axis, "softmax");
  const Tensor x = contiguous_copy_if_needed(x_in);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device());
  const AxisView v = axis_view(x.shape(), axis);
  if (x.numel() == 0) return out;
  dispatch_floating(x.dtype(), "softmax", [&]<typename T>() {
    DeviceGuard guard(index_);
    launch(softmax_kernel<T>, grid_for_warps(v.lines()), kBlockThreads, current_stream(index_),
           x.data<T>(), out.data<T>(), v.lines(), v.n, v.inner, log);
  });
  return out;
}

Tensor CudaBackend::softmax_backward(const Tensor& y_in, const Tensor& dy_in, int axis, bool log) {
  check(y_in.shape() == dy_in.shape(), "softmax_backward: y ", shape_str(y_in.shape()),
        " and dy ", shape_str(dy_in.shape()), " differ");
  check(y_in.dtype() == dy_in.dtype(), "softmax_backward: y is ", dtype_name(y_in.dtype()),
        ", dy is ", dtype_name(dy_in.dtype()));
  check_on(y_in, device(), "softmax_backward", "y");
  check_on(dy_in, device(), "softmax_backward", "dy");
  check_axis(y_in, axis, "softmax_backward");
  const Tensor y = contiguous_copy_if_needed(y_in), dy = contiguous_copy_if_needed(dy_in);
  Tensor dx = Tensor::empty(y.shape(), y.dtype(), device());
  const AxisView v = axis_view(y.shape(), axis);
  if (y.numel() == 0) return dx;
  dispatch_floating(y.dtype(), "softmax_backward", [&]<typename T>() {
    DeviceGuard guard(index_);
    launch(softmax_backward_kernel<T>, grid_for_warps(v.lines()), kBlockThreads,
           current_stream(index_), y.data<T>(), dy.data<T>(), dx.data<T>(), v.lines(), v.n,
           v.inner, log);
  });
  return dx;
}

}  // namespace tg::cuda
