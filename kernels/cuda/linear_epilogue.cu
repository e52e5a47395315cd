// CUDA epilogue of a linear layer (the CUDA twin of kernels/cpu/linear_epilogue.cpp): bias add
// and activation in one pass over the GEMM's output, and the backward pass with the bias
// gradient; and the whole backward of a ReLU (or Identity) layer, linear_backward, which never
// writes dpre.
//
// Forward and dpre: one thread per element of [N, D], with the CPU's expressions in the CPU's
// types (gelu in double, the rest in T), so both devices agree to within the last bits of erf and
// exp. Each thread reads its element before it writes it, so outputs may alias x.
// The bias gradient sums the stored dpre column by column exactly as the CPU does: each chunk of
// kRowBlock rows into a partial [chunks, D] in T, rows in order, then the chunks in order (by the
// kernel's last block to finish, so one launch). It reads
// dpre back from memory rather than summing in the kernel that computes it, so that no multiply
// fuses with the sum (an FMA) and the sums are the CPU's, bit for bit, whenever the dpre are.
//
// linear_backward for ReLU: dpre = 0 where saved <= 0, else dy, is a mask, so it need not be a
// tensor. The input gradient dx = dpre @ W^T and the weight gradient dW = x^T @ dpre are SGEMMs
// that read dy through the mask as they load their tiles (sgemm.h's operand masks), and the bias
// gradient sums the masked dy in the order above (a select, no multiply: still the CPU's sums bit
// for bit). That saves dpre's [N, D] buffer and the kernel that writes it; the price is a second
// load (the mask) wherever a GEMM loads a tile of dy. A dx_residual (the gradient x's other
// consumers sent already) is added by dx's GEMM as it stores, the epilogue's residual, and a
// dx_relu_mask (x a ReLU's output) is applied by it after that, the epilogue's mask_c: the
// layer below then takes dx as its dpre, and its GEMMs load no mask (autograd's mlp op). Gelu
// and Square, whose derivatives are not masks, and float64 take the base class's composition.
#include <cstdint>
#include <string>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/gemm_operands.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/ordered_sum.cuh"
#include "kernels/cuda/rounded.cuh"
#include "kernels/cuda/stream.h"
#include "kernels/dispatch.h"

namespace tg::cuda {

namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr int64_t kRowBlock = 64;  // rows per bias-gradient partial sum, as on the CPU
// A partial sum's rows loaded at a time, before they are added in order: one trip to memory for
// 16 rows, where a thread summing its 64 rows one after another waited 64 times.
constexpr int kColumnLoads = 16;

template <Activation act, typename T>
__device__ inline T activate(T x) {
  switch (act) {
    case Activation::Identity:
      return x;
    case Activation::Relu:
      return x < T(0) ? T(0) : x;  // NaN stays NaN
    case Activation::Gelu:
      return static_cast<T>(0.5 * x * (1.0 + ::erf(x * kInvSqrt2)));
    case Activation::Square:
      return mul_rn(x, x);  // as the GEMM epilogue's (sgemm/common.cuh), bit for bit
  }
  return x;
}

template <Activation act, typename T>
__device__ inline T activation_grad(T dy, T saved) {
  switch (act) {
    case Activation::Identity:
      return dy;
    case Activation::Relu:
      return saved <= T(0) ? T(0) : dy;  // NaN passes the gradient, as Step
    case Activation::Gelu: {
      const double s = static_cast<double>(saved);
      const double cdf = 0.5 * (1.0 + ::erf(s * kInvSqrt2));
      const double pdf = kInvSqrt2Pi * ::exp(-0.5 * s * s);
      return dy * static_cast<T>(cdf + s * pdf);
    }
    case Activation::Square:
      return dy * (saved + saved);
  }
  return dy;
}

// x, pre, y [rows, cols] (pre and y may be null or equal to x); bias [cols] or null.
template <Activation act, typename T>
__global__ void bias_activation_kernel(const T* x, const T* bias, T* pre, T* y, int64_t n,
                                       int64_t cols) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) {
    const T v = x[i] + (bias ? bias[i % cols] : T(0));  // as the CPU, which adds zeros: -0 -> +0
    if (pre) pre[i] = v;
    if (y) y[i] = activate<act>(v);
  }
}

template <Activation act, typename T>
__global__ void activation_grad_kernel(const T* dy, const T* saved, T* dpre, int64_t n) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) { dpre[i] = activation_grad<act>(dy[i], saved[i]); }
}

// The bias gradient in one launch: one thread per (chunk, column) sums the chunk's rows of dpre
// [rows, cols] in order, into partial [chunks, cols] (with a ReLU mask, laid out as dpre; null:
// none, it sums dy through it instead: the values dpre would hold, added in the same order).
// The block that finishes last (each block counts itself in blocks_done once its partials are
// visible) then adds each column's chunks in order and resets the counter for the next launch:
// the sums of a second pass, without a second launch.
template <typename T>
__global__ void column_sums_kernel(const T* dpre, const T* relu_mask, T* partial, T* out,
                                   int64_t rows, int64_t cols, int64_t chunks,
                                   unsigned long long* blocks_done) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, chunks * cols) {
    const int64_t chunk = i / cols, c = i % cols;
    const int64_t end = chunk * kRowBlock + kRowBlock < rows ? chunk * kRowBlock + kRowBlock : rows;
    T acc = T(0);
    for (int64_t r0 = chunk * kRowBlock; r0 < end; r0 += kColumnLoads) {
      T v[kColumnLoads], saved[kColumnLoads];  // loads in flight together; the adds in order
#pragma unroll
      for (int u = 0; u < kColumnLoads; ++u) {
        const int64_t r = r0 + u;
        v[u] = r < end ? dpre[r * cols + c] : T(0);
        saved[u] = relu_mask && r < end ? relu_mask[r * cols + c] : T(0);
      }
#pragma unroll
      for (int u = 0; u < kColumnLoads; ++u) {
        if (r0 + u >= end) break;
        acc += relu_mask ? activation_grad<Activation::Relu>(v[u], saved[u]) : v[u];
      }
    }
    partial[i] = acc;
  }
  __threadfence();  // this thread's partials, visible to every block before the block counts
  __syncthreads();
  __shared__ bool last;
  if (threadIdx.x == 0) last = atomicAdd(blocks_done, 1ull) == gridDim.x - 1ull;
  __syncthreads();
  if (!last) return;
  __threadfence();  // and the other blocks' partials visible to this one
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    out[c] = ordered_sum_from_l2<T>(partial + c, chunks, cols);
  if (threadIdx.x == 0) *blocks_done = 0;
}

// dbias [cols] = the column sums of dpre [rows, cols] (read through relu_mask when not null), in
// the CPU's order: chunks of kRowBlock rows, then the chunks. blocks_done: a zero counter
// (CudaBackend::last_block_counter), zero again when the kernel ends.
template <typename T>
void column_sums(const T* dpre, const T* relu_mask, T* dbias, int64_t rows, int64_t cols,
                 unsigned long long* blocks_done, Device device, cudaStream_t stream) {
  if (cols == 0) return;
  const int64_t chunks = (rows + kRowBlock - 1) / kRowBlock;
  const Tensor partial = Tensor::empty({chunks, cols}, dtype_of<T>(), device);
  launch(column_sums_kernel<T>, grid_for(chunks * cols), kBlockThreads, stream, dpre, relu_mask,
         partial.data<T>(), dbias, rows, cols, chunks, blocks_done);
}

// One float32 product op(a) @ op(b) of 2-D views into a fresh contiguous [M, N] through the
// SGEMM, a read through a_mask and b through b_mask where those are defined (each of its
// operand's shape and strides, so that the operand's layout describes it too), plus a residual
// [M, N] where that is defined, then 0 where c_mask (contiguous [M, N]) is defined and <= 0.
Tensor masked_product(const Tensor& a_in, const Tensor& a_mask, const Tensor& b_in,
                      const Tensor& b_mask, const Tensor& residual_in, const Tensor& c_mask,
                      Device device, cudaStream_t stream) {
  Tensor a = a_in, b = b_in;  // (a masked operand is dy, contiguous: never copied)
  Tensor out = Tensor::empty({a.size(0), b.size(1)}, DType::Float32, device);
  if (out.numel() == 0) return out;
  // Added as the output is stored, so read as it is laid out: contiguous [M, N].
  const Tensor residual =
      residual_in.defined() ? contiguous_copy_if_needed(residual_in) : Tensor();
  GemmArgs args = product_args(a, b, out);
  args.mask_a = a_mask.defined() ? a_mask.data<float>() : nullptr;
  args.mask_b = b_mask.defined() ? b_mask.data<float>() : nullptr;
  args.residual = residual.defined() ? residual.data<float>() : nullptr;
  args.mask_c = c_mask.defined() ? c_mask.data<float>() : nullptr;
  sgemm(args, stream);
  return out;
}

// An output the kernels write as a contiguous [rows, cols] of x's dtype.
void check_output(const Tensor& t, const Tensor& x, Device device, const char* op,
                  const char* role) {
  check_on(t, device, op, role);
  check(t.shape() == x.shape() && t.is_contiguous() && t.dtype() == x.dtype(), op, ": ", role,
        " must be a contiguous ", dtype_name(x.dtype()), " ", shape_str(x.shape()), ", got ",
        dtype_name(t.dtype()), " ", shape_str(t.shape()));
}

}  // namespace

void CudaBackend::bias_activation(const Tensor& x, const Tensor& bias_in, Activation act,
                                  const Tensor& pre, const Tensor& y) {
  check(x.dim() == 2 && x.is_contiguous(), "bias_activation: x must be contiguous [N, D], got ",
        shape_str(x.shape()));
  check_on(x, device(), "bias_activation", "x");
  if (pre.defined()) check_output(pre, x, device(), "bias_activation", "pre");
  if (y.defined()) check_output(y, x, device(), "bias_activation", "y");
  if (bias_in.defined()) check_on(bias_in, device(), "bias_activation", "bias");
  const Tensor bias = bias_in.defined() ? contiguous_copy_if_needed(bias_in) : Tensor();
  const int64_t n = x.numel(), cols = x.size(1);
  dispatch_floating(x.dtype(), "bias_activation", [&]<typename T>() {
    if (n == 0 || (!pre.defined() && !y.defined())) return;
    DeviceGuard guard(index_);
    cudaStream_t stream = current_stream(index_);
    dispatch_activation(act, [&]<Activation kAct>() {
      launch(bias_activation_kernel<kAct, T>, grid_for(n), kBlockThreads, stream, x.data<T>(),
             bias.defined() ? bias.data<T>() : nullptr, pre.defined() ? pre.data<T>() : nullptr,
             y.defined() ? y.data<T>() : nullptr, n, cols);
    });
  });
}

Tensor CudaBackend::activation_backward(const Tensor& dy, const Tensor& saved, Activation act,
                                        const Tensor& dbias) {
  check(dy.dim() == 2 && dy.is_contiguous() && saved.shape() == dy.shape() && saved.is_contiguous(),
        "activation_backward: dy ", shape_str(dy.shape()), " and saved ", shape_str(saved.shape()),
        " must be contiguous [N, D] of one shape");
  check_on(dy, device(), "activation_backward", "dy");
  check_on(saved, device(), "activation_backward", "saved");
  const int64_t rows = dy.size(0), cols = dy.size(1), n = dy.numel();
  if (dbias.defined()) {
    check_on(dbias, device(), "activation_backward", "dbias");
    check(dbias.shape() == Shape{cols} && dbias.is_contiguous() && dbias.dtype() == dy.dtype(),
          "activation_backward: dbias must be a contiguous ", dtype_name(dy.dtype()), " [", cols,
          "], got ", dtype_name(dbias.dtype()), " ", shape_str(dbias.shape()));
  }
  Tensor dpre = Tensor::empty(dy.shape(), dy.dtype(), device());
  dispatch_floating(dy.dtype(), "activation_backward", [&]<typename T>() {
    DeviceGuard guard(index_);
    cudaStream_t stream = current_stream(index_);
    if (n > 0) {
      dispatch_activation(act, [&]<Activation kAct>() {
        launch(activation_grad_kernel<kAct, T>, grid_for(n), kBlockThreads, stream, dy.data<T>(),
               saved.data<T>(), dpre.data<T>(), n);
      });
    }
    if (dbias.defined())
      column_sums<T>(dpre.data<T>(), nullptr, dbias.data<T>(), rows, cols,
                     last_block_counter(), device(), stream);
  });
  return dpre;
}

void CudaBackend::linear_backward(const Tensor& dy, const Tensor& x, const Tensor& W,
                                  const Tensor& saved, Activation act, bool with_dbias,
                                  const Tensor& dx_residual, const Tensor& dx_relu_mask,
                                  Tensor& dx, Tensor& dW, Tensor& dbias) {
  // Gelu's and Square's derivatives are no masks; float64 has no SGEMM; empty products need no
  // kernels: the composition of primitives (which checks what it is given).
  const bool relu = act == Activation::Relu;
  if (dy.dtype() != DType::Float32 || (!relu && act != Activation::Identity) || dy.numel() == 0)
    return Backend::linear_backward(dy, x, W, saved, act, with_dbias, dx_residual,
                                    dx_relu_mask, dx, dW, dbias);
  check(dy.dim() == 2 && dy.is_contiguous(), "linear_backward: dy must be contiguous [N, D], got ",
        shape_str(dy.shape()));
  check(!relu || (saved.defined() && saved.shape() == dy.shape() && saved.is_contiguous() &&
                  saved.dtype() == dy.dtype()),
        "linear_backward: saved must be a contiguous ", dtype_name(dy.dtype()), " ",
        shape_str(dy.shape()), " for relu, got ",
        saved.defined() ? cat(dtype_name(saved.dtype()), " ", shape_str(saved.shape()))
                        : std::string("none"));
  check_on(dy, device(), "linear_backward", "dy");
  if (relu) check_on(saved, device(), "linear_backward", "saved");
  if (x.defined()) check_on(x, device(), "linear_backward", "x");
  if (W.defined()) check_on(W, device(), "linear_backward", "W");
  check_dx_extras(dx_residual, dx_relu_mask, dy, W);
  if (dx_residual.defined()) check_on(dx_residual, device(), "linear_backward", "dx_residual");
  if (dx_relu_mask.defined())
    check_on(dx_relu_mask, device(), "linear_backward", "dx_relu_mask");
  const DeviceGuard guard(index_);
  const cudaStream_t stream = current_stream(index_);
  const int64_t rows = dy.size(0), cols = dy.size(1);
  const Tensor mask = relu ? saved : Tensor();  // dpre = 0 where saved <= 0, else dy
  dx = dW = dbias = Tensor();
  if (with_dbias) {
    dbias = Tensor::empty({cols}, DType::Float32, device());
    column_sums<float>(dy.data<float>(), relu ? mask.data<float>() : nullptr,
                       dbias.data<float>(), rows, cols, last_block_counter(), device(), stream);
  }
  if (W.defined())
    dx = masked_product(dy, mask, W.transpose(0, 1), Tensor(), dx_residual, dx_relu_mask,
                        device(), stream);
  if (x.defined())
    dW = masked_product(x.transpose(0, 1), Tensor(), dy, mask, Tensor(), Tensor(), device(),
                        stream);
}

}  // namespace tg::cuda
