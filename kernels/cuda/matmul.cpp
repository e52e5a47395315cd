// CUDA matmul: our own SGEMM (kernels/cuda/sgemm, the best version for the arguments) over the
// tensors' buffers. As on the CPU, a row-major view is used as is and a transposed view as the
// transposed operand, so backward's A^T and B^T cost no copies; batch axes that step by one
// stride become one batched launch, other batch layouts one launch per matrix.
// linear_forward is one 2-D product whose GEMM applies the bias, the activation and a residual
// as it stores its output (sgemm.h's epilogue), instead of further passes over it.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/gemm_operands.h"
#include "kernels/cuda/stream.h"

namespace tg::cuda {

namespace {

// The stride between consecutive batch matrices when the batch axes of t walk it with one
// stride (broadcast axes included: stride 0); false otherwise.
bool uniform_batch_stride(const Tensor& t, int64_t& stride) {
  const int batch_dims = static_cast<int>(t.dim()) - 2;
  stride = 0;
  bool first = true;
  int64_t expected = 0;
  for (int d = batch_dims - 1; d >= 0; --d) {
    if (t.shape()[d] == 1) continue;
    if (first) {
      stride = t.strides()[d];
      expected = stride * t.shape()[d];
      first = false;
    } else {
      if (t.strides()[d] != expected) return false;
      expected *= t.shape()[d];
    }
  }
  return true;
}

}  // namespace

void CudaBackend::matmul_into(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  check(a_in.dtype() == DType::Float32, "cuda: matmul: our SGEMM is float32 only, got ",
        dtype_name(a_in.dtype()), " (float64 runs on the CPU)");
  int64_t ldc = 0;
  check(matrix_layout(out, ldc) == MatrixLayout::RowMajor,
        "cuda: matmul: the output's rows must be contiguous, got strides ",
        shape_str(out.strides()));
  const DeviceGuard guard(index_);
  Tensor a = a_in, b = b_in;
  const int64_t m = a.shape()[a.dim() - 2], n = b.shape()[b.dim() - 1];
  const int64_t batches = m * n == 0 ? 0 : out.numel() / (m * n);
  if (batches == 0) return;

  GemmArgs args = product_args(a, b, out);
  args.ldc = ldc;
  const cudaStream_t stream = current_stream(index_);
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  if (uniform_batch_stride(a, stride_a) && uniform_batch_stride(b, stride_b) &&
      uniform_batch_stride(out, stride_c)) {
    args.batch = static_cast<int>(batches);
    args.stride_a = stride_a;
    args.stride_b = stride_b;
    args.stride_c = stride_c;
    sgemm(args, stream);
    return;
  }
  for (int64_t i = 0; i < batches; ++i) {
    args.A = a.data<float>() + batch_offset(a, i);
    args.B = b.data<float>() + batch_offset(b, i);
    args.C = out.data<float>() + batch_offset(out, i);
    sgemm(args, stream);
  }
}

Tensor CudaBackend::linear_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in,
                                  Activation act, const Tensor& residual_in, Tensor* pre) {
  // Float64 (which matmul turns down with its message) and plain products: the base class's path.
  if (x_in.dtype() != DType::Float32 || x_in.dim() != 2 || w_in.dim() != 2 ||
      (!bias_in.defined() && act == Activation::Identity && !residual_in.defined()))
    return Backend::linear_forward(x_in, w_in, bias_in, act, residual_in, pre);
  const DeviceGuard guard(index_);
  Tensor x = x_in, w = w_in;
  const Tensor bias = bias_in.defined() ? contiguous_copy_if_needed(bias_in) : Tensor();
  if (residual_in.defined()) check_on(residual_in, device(), "linear_forward", "residual");
  // Read as C is written: contiguous [m, n].
  const Tensor residual =
      residual_in.defined() ? contiguous_copy_if_needed(residual_in) : Tensor();

  const int64_t m = x.size(0), n = w.size(1);
  Tensor y = Tensor::empty({m, n}, DType::Float32, device());
  if (pre) *pre = Tensor::empty({m, n}, DType::Float32, device());
  if (m * n == 0) return y;
  GemmArgs args = product_args(x, w, y);
  args.bias = bias.defined() ? bias.data<float>() : nullptr;
  args.act = act;
  args.pre = pre ? pre->data<float>() : nullptr;
  args.residual = residual.defined() ? residual.data<float>() : nullptr;
  sgemm(args, current_stream(index_));
  return y;
}

}  // namespace tg::cuda
