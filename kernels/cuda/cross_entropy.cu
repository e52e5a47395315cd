// CUDA fused softmax cross-entropy and its backward (the CUDA twin of the second half of
// kernels/cpu/softmax.cpp).
//
// One warp per row of logits [N, C] (in training N is a few thousand and C about a hundred, so
// each lane holds three or four classes): lane l takes the classes c = l, l + 32, ... in
// increasing order, then an xor-shuffle butterfly combines the 32 lanes, leaving the same bits in
// every lane. As on the CPU, everything is computed in the logits' own type T (float for
// float32): the row maximum, the sum of exp(logit - max) and its log, the shifted log-sum-exp
// that backward reuses. The sum's order (per lane, then the butterfly) differs from the CPU's
// vectorised Eigen sum, so the two agree to rounding, not bit for bit.
//
// cross_entropy_with_grad fuses the two for a mean or sum, whose row gradient (1 / N or 1) is
// known in the forward pass: the same warp per row holds its logits in registers (kPerLane
// lane-strided chunks per lane; classes beyond 32 * kPerLane are read again from memory), takes
// the maximum, the sum of exponentials and the loss, and writes dlogits = (softmax - onehot) *
// row_scale in the same kernel: one read of the logits, no probabilities written. The block that
// finishes last then reduces the row losses to the mean or sum, so the step's loss costs no
// launch of its own. Its sums run in the same order as the two kernels' and reduce's, so it
// gives their bits exactly.
//
// Targets are checked on the device before anything runs: a kernel records the first row whose
// target is out of range, the host reads that one flag back and throws the CPU's error.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/full_sum.cuh"
#include "kernels/cuda/rounded.cuh"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/warp.cuh"
#include "kernels/dispatch.h"

namespace tg::cuda {

namespace {


// The math in T, as Eigen's array exp and std::log compute it on the CPU.
__device__ inline float math_exp(float x) { return ::expf(x); }
__device__ inline double math_exp(double x) { return ::exp(x); }
__device__ inline float math_log(float x) { return ::logf(x); }
__device__ inline double math_log(double x) { return ::log(x); }

// The maximum of one row of `classes` values, in every lane.
template <typename T>
__device__ inline T row_max(const T* row, int64_t classes, int lane) {
  T peak = static_cast<T>(-HUGE_VAL);
  for (int64_t c = lane; c < classes; c += kWarp) peak = max_of(peak, row[c]);
  return warp_max(peak);
}

// Each warp visits its rows; all lanes of a warp see the same row, so the shuffles inside
// always have the full warp.
#define TG_FOR_EACH_WARP_ROW(r, rows)                                                        \
  const int lane = static_cast<int>(threadIdx.x) % kWarp;                                    \
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;    \
       r < (rows); r += static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp)

// loss[r] = log(sum_c exp(x[r, c] - max)) - (x[r, target] - max); the first term is also saved.
template <typename T>
__global__ void cross_entropy_kernel(const T* logits, const int64_t* targets, T* loss,
                                     T* shifted_logsumexp, int64_t rows, int64_t classes) {
  kernel_prologue();
  TG_FOR_EACH_WARP_ROW(r, rows) {
    const T* row = logits + r * classes;
    const T peak = row_max(row, classes, lane);  // subtracted so that exp never overflows
    T total = 0;
    for (int64_t c = lane; c < classes; c += kWarp) total += math_exp(row[c] - peak);
    total = warp_sum(total);
    if (lane == 0) {
      const T shifted = math_log(total);
      shifted_logsumexp[r] = shifted;
      loss[r] = shifted - (row[targets[r]] - peak);
    }
  }
}

// dlogits[r, c] = exp((x[r, c] - max) - shifted_logsumexp[r]) * g[r], minus g[r] at the target.
template <typename T>
__global__ void cross_entropy_backward_kernel(const T* logits, const int64_t* targets,
                                              const T* shifted_logsumexp, const T* row_grad,
                                              T* dlogits, int64_t rows, int64_t classes) {
  kernel_prologue();
  TG_FOR_EACH_WARP_ROW(r, rows) {
    const T* row = logits + r * classes;
    const T peak = row_max(row, classes, lane);
    const T log_total = shifted_logsumexp[r], grad = row_grad[r];
    const int64_t target = targets[r];
    T* out = dlogits + r * classes;
    for (int64_t c = lane; c < classes; c += kWarp) {
      // Two subtractions, not one of (peak + log_total): that sum would round at the scale of
      // the logits (an ulp of 6e-5 near 1000) and shift every probability by as much.
      // Each product and difference rounded on its own: the fused kernel below computes the
      // same values in code of another shape, which nvcc could contract differently.
      T v = mul_rn(math_exp((row[c] - peak) - log_total), grad);
      if (c == target) v = sub_rn(v, grad);  // minus the one-hot target
      out[c] = v;
    }
  }
}

// Both kernels above in one: loss[r] as cross_entropy_kernel gives it (into row_losses), and
// dlogits[r, c] as cross_entropy_backward_kernel gives it for row_grad[r] = row_scale, from one
// read of the row. Lane l keeps classes l + 32 k (k < kPerLane) in registers; every sum visits a
// lane's classes in increasing order, as the two-kernel route does, so the bits agree. Then the
// last block to finish (counted in blocks_done, a zero counter, zero again at the end) writes
// *loss = row_scale * the sum of row_losses, as reduce computes a mean (row_scale 1 / N) or a
// sum (1), to the bit (block_sum_as_reduce).
template <typename T, int kPerLane>
__global__ void cross_entropy_with_grad_kernel(const T* logits, const int64_t* targets,
                                               double row_scale, T* row_losses, T* loss,
                                               T* dlogits, int64_t rows, int64_t classes,
                                               unsigned long long* blocks_done) {
  kernel_prologue();
  const T scale = static_cast<T>(row_scale);
  TG_FOR_EACH_WARP_ROW(r, rows) {
    const T* row = logits + r * classes;
    T held[kPerLane];
    T peak = static_cast<T>(-HUGE_VAL);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int64_t c = lane + static_cast<int64_t>(k) * kWarp;
      held[k] = c < classes ? row[c] : T(0);
      if (c < classes) peak = max_of(peak, held[k]);
    }
    constexpr int64_t kHeld = static_cast<int64_t>(kPerLane) * kWarp;
    for (int64_t c = kHeld + lane; c < classes; c += kWarp) peak = max_of(peak, row[c]);
    peak = warp_max(peak);
    T total = 0;
#pragma unroll
    for (int k = 0; k < kPerLane; ++k)
      if (lane + static_cast<int64_t>(k) * kWarp < classes) total += math_exp(held[k] - peak);
    for (int64_t c = kHeld + lane; c < classes; c += kWarp) total += math_exp(row[c] - peak);
    total = warp_sum(total);
    const T log_total = math_log(total);
    const int64_t target = targets[r];
    if (lane == 0) row_losses[r] = log_total - (row[target] - peak);
    T* out = dlogits + r * classes;
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int64_t c = lane + static_cast<int64_t>(k) * kWarp;
      if (c < classes) {
        T v = mul_rn(math_exp((held[k] - peak) - log_total), scale);  // see the backward kernel
        if (c == target) v = sub_rn(v, scale);
        out[c] = v;
      }
    }
    for (int64_t c = kHeld + lane; c < classes; c += kWarp) {
      T v = mul_rn(math_exp((row[c] - peak) - log_total), scale);
      if (c == target) v = sub_rn(v, scale);
      out[c] = v;
    }
  }

  __threadfence();  // this block's row losses, visible to every block before the block counts
  __syncthreads();
  __shared__ bool last;
  if (threadIdx.x == 0) last = atomicAdd(blocks_done, 1ull) == gridDim.x - 1ull;
  __syncthreads();
  if (!last) return;
  __threadfence();  // and the other blocks' row losses visible to this one
  const double total = block_sum_as_reduce(row_losses, rows);
  if (threadIdx.x == 0) {
    *loss = static_cast<T>(static_cast<double>(static_cast<T>(total)) * row_scale);
    *blocks_done = 0;
  }
}

#undef TG_FOR_EACH_WARP_ROW

// Throws the CPU's message when a target (contiguous, on the backend's device) lies outside
// [0, classes). Waits for the stream once; a no-op without targets.
void check_targets(const Tensor& targets, int64_t classes) {
  const int64_t i = first_out_of_range(targets, classes);
  if (i < 0) return;
  throw Error(cat("cross_entropy: target ", targets.to_vector<int64_t>()[i], " at row ", i,
                  " is out of range [0, ", classes, ")"));
}

// Threads for one warp per row (grid_for caps the grid; the loop covers the rest).
unsigned grid_for_warps(int64_t rows) { return grid_for(rows * kWarp); }

}  // namespace

void CudaBackend::cross_entropy(const Tensor& logits_in, const Tensor& targets_in, Tensor& loss,
                                Tensor& shifted_logsumexp) {
  check_on(logits_in, device(), "cross_entropy", "logits");
  check_on(targets_in, device(), "cross_entropy", "targets");
  const Tensor logits = contiguous_copy_if_needed(logits_in);
  const Tensor targets = contiguous_copy_if_needed(targets_in);
  const int64_t rows = logits.size(0), classes = logits.size(1);
  DeviceGuard guard(index_);
  cudaStream_t stream = current_stream(index_);
  check_targets(targets, classes);
  loss = Tensor::empty({rows}, logits.dtype(), device());
  shifted_logsumexp = Tensor::empty({rows}, logits.dtype(), device());
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<typename T>() {
    if (rows == 0) return;
    launch(cross_entropy_kernel<T>, grid_for_warps(rows), kBlockThreads, stream, logits.data<T>(),
           targets.data<int64_t>(), loss.data<T>(), shifted_logsumexp.data<T>(), rows, classes);
  });
}

Tensor CudaBackend::cross_entropy_backward(const Tensor& logits_in, const Tensor& targets_in,
                                           const Tensor& shifted_logsumexp_in,
                                           const Tensor& row_grad_in) {
  check_on(logits_in, device(), "cross_entropy_backward", "logits");
  check_on(targets_in, device(), "cross_entropy_backward", "targets");
  check_on(shifted_logsumexp_in, device(), "cross_entropy_backward", "shifted_logsumexp");
  check_on(row_grad_in, device(), "cross_entropy_backward", "row_grad");
  const Tensor logits = contiguous_copy_if_needed(logits_in);
  const Tensor targets = contiguous_copy_if_needed(targets_in);
  const Tensor shifted_logsumexp = contiguous_copy_if_needed(shifted_logsumexp_in);
  const Tensor row_grad = contiguous_copy_if_needed(row_grad_in);
  const int64_t rows = logits.size(0), classes = logits.size(1);
  Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype(), device());
  dispatch_floating(logits.dtype(), "cross_entropy_backward", [&]<typename T>() {
    if (rows == 0 || classes == 0) return;
    DeviceGuard guard(index_);
    launch(cross_entropy_backward_kernel<T>, grid_for_warps(rows), kBlockThreads,
           current_stream(index_), logits.data<T>(), targets.data<int64_t>(),
           shifted_logsumexp.data<T>(), row_grad.data<T>(), dlogits.data<T>(), rows, classes);
  });
  return dlogits;
}

void CudaBackend::cross_entropy_with_grad(const Tensor& logits_in, const Tensor& targets_in,
                                          ReduceOp reduction, Tensor& loss, Tensor& dlogits) {
  check(reduction == ReduceOp::Sum || reduction == ReduceOp::Mean,
        "cross_entropy_with_grad: the reduction must be a sum or a mean");
  check_on(logits_in, device(), "cross_entropy", "logits");
  check_on(targets_in, device(), "cross_entropy", "targets");
  const Tensor logits = contiguous_copy_if_needed(logits_in);
  const Tensor targets = contiguous_copy_if_needed(targets_in);
  const int64_t rows = logits.size(0), classes = logits.size(1);
  DeviceGuard guard(index_);
  check_targets(targets, classes);
  loss = Tensor::empty({}, logits.dtype(), device());
  dlogits = Tensor::empty(logits.shape(), logits.dtype(), device());
  if (rows == 0) {  // as reduce: the sum of no rows is 0 (the ops reject an empty mean)
    fill(loss, 0);
    return;
  }
  const Tensor row_losses = Tensor::empty({rows}, logits.dtype(), device());
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<typename T>() {
    // Four chunks hold this project's ~100 classes; sixteen hold up to 512 in registers.
    auto* kernel = classes <= 4 * kWarp ? cross_entropy_with_grad_kernel<T, 4>
                                        : cross_entropy_with_grad_kernel<T, 16>;
    launch(kernel, grid_for_warps(rows), kBlockThreads, current_stream(index_),
           logits.data<T>(), targets.data<int64_t>(), cross_entropy_row_scale(reduction, rows),
           row_losses.data<T>(), loss.data<T>(), dlogits.data<T>(), rows, classes,
           last_block_counter());
  });
}

}  // namespace tg::cuda
