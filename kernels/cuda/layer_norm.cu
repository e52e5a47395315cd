// CUDA layer norm over the last axis, forward and backward (the CUDA twin of
// kernels/cpu/layer_norm.cpp, with the same formulas, accumulating in double as it does):
//   forward:  xhat = (x - mean) * rstd,  y = xhat * w + b
//   backward: dxhat = dy * w
//             dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//             dw = sum over rows of dy * xhat,  db = sum over rows of dy
//
// The row statistics and dx: one warp per row of x [rows, D]. Lane l takes the columns l, l + 32,
// ... in increasing order, and a fixed butterfly of shuffles gives every lane the same row sum.
// dw and db are column sums over all rows, in two passes: the first sums each fixed chunk of
// kRowChunk rows of one column into a double partial [chunks, D], the second adds a column's
// chunks in order. No sum depends on the launch geometry or on timing, so every run gives the
// same bits.
#include <cstdint>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/warp.cuh"
#include "kernels/dispatch.h"

namespace tg::cuda {

namespace {

constexpr int64_t kRowChunk = 64;  // rows per partial column sum (fixed: deterministic)

// Each warp visits its rows r; all lanes of a warp see the same r, so the shuffles inside always
// have the full warp.
#define TG_FOR_EACH_WARP_ROW(r, rows)                                                        \
  const int lane = static_cast<int>(threadIdx.x) % kWarp;                                    \
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;    \
       r < (rows); r += static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp)

// x, y [rows, d]; weight, bias [d] or null; mean, rstd [rows].
template <typename T>
__global__ void layer_norm_kernel(const T* x, const T* weight, const T* bias, T* y, T* mean,
                                  T* rstd, int64_t rows, int64_t d, double eps) {
  kernel_prologue();
  TG_FOR_EACH_WARP_ROW(r, rows) {
    const T* row = x + r * d;
    double mu = 0;
    for (int64_t i = lane; i < d; i += kWarp) mu += static_cast<double>(row[i]);
    mu = warp_sum(mu) / static_cast<double>(d);
    double var = 0;
    for (int64_t i = lane; i < d; i += kWarp) {
      const double c = static_cast<double>(row[i]) - mu;
      var += c * c;
    }
    var = warp_sum(var);
    const double inv = 1.0 / ::sqrt(var / static_cast<double>(d) + eps);
    for (int64_t i = lane; i < d; i += kWarp) {
      double v = (static_cast<double>(row[i]) - mu) * inv;
      if (weight) v *= static_cast<double>(weight[i]);
      if (bias) v += static_cast<double>(bias[i]);
      y[r * d + i] = static_cast<T>(v);
    }
    if (lane == 0) {
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(inv);
    }
  }
}

// dy, x, dx [rows, d]; weight [d] or null; mean, rstd [rows].
template <typename T>
__global__ void layer_norm_dx_kernel(const T* dy, const T* x, const T* weight, const T* mean,
                                     const T* rstd, T* dx, int64_t rows, int64_t d) {
  kernel_prologue();
  TG_FOR_EACH_WARP_ROW(r, rows) {
    const double mu = static_cast<double>(mean[r]), inv = static_cast<double>(rstd[r]);
    double mean_dxhat = 0, mean_dxhat_xhat = 0;
    for (int64_t i = lane; i < d; i += kWarp) {
      const double xhat = (static_cast<double>(x[r * d + i]) - mu) * inv;
      const double dxhat =
          static_cast<double>(dy[r * d + i]) * (weight ? static_cast<double>(weight[i]) : 1.0);
      mean_dxhat += dxhat;
      mean_dxhat_xhat += dxhat * xhat;
    }
    mean_dxhat = warp_sum(mean_dxhat) / static_cast<double>(d);
    mean_dxhat_xhat = warp_sum(mean_dxhat_xhat) / static_cast<double>(d);
    for (int64_t i = lane; i < d; i += kWarp) {
      const double xhat = (static_cast<double>(x[r * d + i]) - mu) * inv;
      const double dxhat =
          static_cast<double>(dy[r * d + i]) * (weight ? static_cast<double>(weight[i]) : 1.0);
      dx[r * d + i] = static_cast<T>(inv * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
    }
  }
}

#undef TG_FOR_EACH_WARP_ROW

// First pass of dw and db: one thread per (chunk, column) sums dy * xhat and dy over the chunk's
// rows in order, into partial_w and partial_b [chunks, d].
template <typename T>
__global__ void layer_norm_partials_kernel(const T* dy, const T* x, const T* mean, const T* rstd,
                                           double* partial_w, double* partial_b, int64_t rows,
                                           int64_t d, int64_t chunks) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, chunks * d) {
    const int64_t chunk = i / d, c = i % d;
    const int64_t end = chunk * kRowChunk + kRowChunk < rows ? chunk * kRowChunk + kRowChunk : rows;
    double sw = 0, sb = 0;
    for (int64_t r = chunk * kRowChunk; r < end; ++r) {
      const double g = static_cast<double>(dy[r * d + c]);
      sw += g * (static_cast<double>(x[r * d + c]) - static_cast<double>(mean[r])) *
            static_cast<double>(rstd[r]);
      sb += g;
    }
    partial_w[i] = sw;
    partial_b[i] = sb;
  }
}

// Second pass: one thread per column adds its chunks' partials in chunk order (0 when there are
// no rows).
template <typename T>
__global__ void layer_norm_column_sums_kernel(const double* partial_w, const double* partial_b,
                                              T* dweight, T* dbias, int64_t d, int64_t chunks) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(c, d) {
    double sw = 0, sb = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      sw += partial_w[k * d + c];
      sb += partial_b[k * d + c];
    }
    dweight[c] = static_cast<T>(sw);
    dbias[c] = static_cast<T>(sb);
  }
}

// Threads for one warp per row (grid_for caps the grid; the loop covers the rest).
unsigned grid_for_warps(int64_t rows) { return grid_for(rows * kWarp); }

}  // namespace

void CudaBackend::layer_norm(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in,
                             double eps, Tensor& y, Tensor& mean, Tensor& rstd) {
  check_on(x_in, device(), "layer_norm", "x");
  if (weight_in.defined()) check_on(weight_in, device(), "layer_norm", "weight");
  if (bias_in.defined()) check_on(bias_in, device(), "layer_norm", "bias");
  const Tensor x = contiguous_copy_if_needed(x_in);
  const Tensor w = weight_in.defined() ? contiguous_copy_if_needed(weight_in) : Tensor();
  const Tensor b = bias_in.defined() ? contiguous_copy_if_needed(bias_in) : Tensor();
  const int64_t d = x.shape().back();
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  y = Tensor::empty(x.shape(), x.dtype(), device());
  mean = Tensor::empty({rows}, x.dtype(), device());
  rstd = Tensor::empty({rows}, x.dtype(), device());
  dispatch_floating(x.dtype(), "layer_norm", [&]<typename T>() {
    if (rows == 0) return;
    DeviceGuard guard(index_);
    launch(layer_norm_kernel<T>, grid_for_warps(rows), kBlockThreads, current_stream(index_),
           x.data<T>(), w.defined() ? w.data<T>() : nullptr, b.defined() ? b.data<T>() : nullptr,
           y.data<T>(), mean.data<T>(), rstd.data<T>(), rows, d, eps);
  });
}

void CudaBackend::layer_norm_backward(const Tensor& dy_in, const Tensor& x_in,
                                      const Tensor& weight_in, const Tensor& mean_in,
                                      const Tensor& rstd_in, Tensor& dx, Tensor& dweight,
                                      Tensor& dbias) {
  check_on(dy_in, device(), "layer_norm_backward", "dy");
  check_on(x_in, device(), "layer_norm_backward", "x");
  check_on(mean_in, device(), "layer_norm_backward", "mean");
  check_on(rstd_in, device(), "layer_norm_backward", "rstd");
  if (weight_in.defined()) check_on(weight_in, device(), "layer_norm_backward", "weight");
  const Tensor dy = contiguous_copy_if_needed(dy_in), x = contiguous_copy_if_needed(x_in);
  const Tensor w = weight_in.defined() ? contiguous_copy_if_needed(weight_in) : Tensor();
  const Tensor mean = contiguous_copy_if_needed(mean_in), rstd = contiguous_copy_if_needed(rstd_in);
  const int64_t d = x.shape().back();
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  dx = Tensor::empty(x.shape(), x.dtype(), device());
  dweight = Tensor::empty({d}, x.dtype(), device());
  dbias = Tensor::empty({d}, x.dtype(), device());
  dispatch_floating(x.dtype(), "layer_norm_backward", [&]<typename T>() {
    if (d == 0) return;
    DeviceGuard guard(index_);
    cudaStream_t stream = current_stream(index_);
    const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
    // [chunks, d] each; with no rows, the second pass writes zeros, as the CPU's empty sums.
    const Tensor partial_w = Tensor::empty({chunks, d}, DType::Float64, device());
    const Tensor partial_b = Tensor::empty({chunks, d}, DType::Float64, device());
    if (rows > 0) {
      launch(layer_norm_dx_kernel<T>, grid_for_warps(rows), kBlockThreads, stream, dy.data<T>(),
             x.data<T>(), w.defined() ? w.data<T>() : nullptr, mean.data<T>(), rstd.data<T>(),
             dx.data<T>(), rows, d);
      launch(layer_norm_partials_kernel<T>, grid_for(chunks * d), kBlockThreads, stream,
             dy.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(), partial_w.data<double>(),
             partial_b.data<double>(), rows, d, chunks);
    }
    launch(layer_norm_column_sums_kernel<T>, grid_for(d), kBlockThreads, stream,
           partial_w.data<double>(), partial_b.data<double>(), dweight.data<T>(), dbias.data<T>(),
           d, chunks);
  });
}

}  // namespace tg::cuda
