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

// The element offset of p from base: operands of one grouped launch may lie in separate
// buffers, and the kernels reach each group's from the first's.
int64_t offset_from(const float* base, const float* p) {
  return static_cast<int64_t>(reinterpret_cast<intptr_t>(p) - reinterpret_cast<intptr_t>(base)) /
         static_cast<int64_t>(sizeof(float));
}

// outs[g] = as[g] @ bs[g] for every g as the GemmArgs of one grouped, batched product
// (sgemm.h's groups; one product: groups = 1): possible when every product is float32 with
// uniform batch strides, and all have the same sizes, layouts and strides, differing only in
// where their operands start.
// Each out must have contiguous rows. Operands that are copied contiguous first go into `keep`,
// which must outlive the launch. False when the products do not fit one launch.
bool grouped_args(const std::vector<Tensor>& as, const std::vector<Tensor>& bs,
                  const std::vector<Tensor>& outs, std::vector<Tensor>& keep, GemmArgs& grouped) {
  const size_t groups = as.size();
  if (groups < 1 || groups > static_cast<size_t>(GemmArgs::kMaxGroups)) return false;
  for (size_t g = 0; g < groups; ++g)
    if (as[g].dtype() != DType::Float32 || bs[g].dtype() != DType::Float32 ||
        outs[g].dtype() != DType::Float32 || as[g].shape() != as[0].shape() ||
        bs[g].shape() != bs[0].shape() || outs[g].shape() != outs[0].shape() ||
        as[g].device() != outs[0].device() || bs[g].device() != outs[0].device() ||
        outs[g].device() != outs[0].device())
      return false;
  const int64_t m = as[0].size(-2), n = bs[0].size(-1);
  const int64_t batches = m * n == 0 ? 0 : outs[0].numel() / (m * n);
  constexpr int64_t kMaxGridZ = 65535;  // a grouped product is one launch, its batch on grid z
  if (batches < 1 || batches * static_cast<int64_t>(groups) > kMaxGridZ) return false;
  for (size_t g = 0; g < groups; ++g) {
    Tensor a = as[g], b = bs[g];
    int64_t ldc = 0, stride_a = 0, stride_b = 0, stride_c = 0;
    if (matrix_layout(outs[g], ldc) != MatrixLayout::RowMajor ||
        !uniform_batch_stride(a, stride_a) || !uniform_batch_stride(b, stride_b) ||
        !uniform_batch_stride(outs[g], stride_c))
      return false;
    GemmArgs args = product_args(a, b, outs[g]);
    keep.push_back(a);
    keep.push_back(b);
    args.ldc = ldc;
    args.batch = gemm_size(batches, "a batch count");
    args.stride_a = stride_a;
    args.stride_b = stride_b;
    args.stride_c = stride_c;
    if (g == 0) {
      grouped = args;
      continue;
    }
    if (args.lda != grouped.lda || args.trans_a != grouped.trans_a || args.ldb != grouped.ldb ||
        args.trans_b != grouped.trans_b || args.ldc != grouped.ldc ||
        args.stride_a != grouped.stride_a || args.stride_b != grouped.stride_b ||
        args.stride_c != grouped.stride_c)
      return false;
    grouped.group_a[g] = offset_from(grouped.A, args.A);
    grouped.group_b[g] = offset_from(grouped.B, args.B);
    grouped.group_c[g] = offset_from(grouped.C, args.C);
  }
  grouped.groups = static_cast<int>(groups);
  grouped.batch = static_cast<int>(batches * static_cast<int64_t>(groups));
  return true;
}

}  // namespace

void CudaBackend::matmul_into_grouped(const std::vector<Tensor>& as,
                                      const std::vector<Tensor>& bs,
                                      const std::vector<Tensor>& outs) {
  check(as.size() == bs.size() && as.size() == outs.size(), "cuda: matmul_into_grouped: ",
        as.size(), " left operands, ", bs.size(), " right operands and ", outs.size(),
        " outputs");
  const DeviceGuard guard(index_);
  std::vector<Tensor> keep;
  GemmArgs args;
  if (!grouped_args(as, bs, outs, keep, args)) return Backend::matmul_into_grouped(as, bs, outs);
  sgemm(args, current_stream(index_));
}

Tensor CudaBackend::matmul_sum(const std::vector<Tensor>& as, const std::vector<Tensor>& bs,
                               const Tensor& residual_in) {
  check_matmul_sum_args(as, bs, residual_in);
  if (as[0].dtype() != DType::Float32 || as[0].dim() < 2)
    return Backend::matmul_sum(as, bs, residual_in);  // whose matmul says float32 only
  const DeviceGuard guard(index_);
  const Tensor residual =
      residual_in.defined() ? contiguous_copy_if_needed(residual_in) : Tensor();
  Tensor sum = Tensor::empty({as[0].size(-2), bs[0].size(-1)}, DType::Float32, device());
  if (sum.numel() == 0) return sum;
  // Each product's output, for grouped_args: the sum itself, broadcast, as the arguments place
  // only A and B (sgemm_batch_sum puts the products in its workspace).
  Shape product_shape = as[0].shape();
  product_shape.back() = bs[0].size(-1);
  const Tensor one_out = sum.expand(product_shape);
  std::vector<Tensor> keep;
  GemmArgs args;
  if (!grouped_args(as, bs, std::vector<Tensor>(as.size(), one_out), keep, args))
    return Backend::matmul_sum(as, bs, residual_in);
  args.residual = residual.defined() ? residual.data<float>() : nullptr;
  sgemm_batch_sum(args, current_stream(index_));
  return sum;
}

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
    args.batch = gemm_size(batches, "a batch count");
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
