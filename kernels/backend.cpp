// The backend registry: the CPU backend is built in; each CUDA device has its own backend, which
// kernels/cuda registers the first time any CUDA device is asked for.
#include "kernels/backend.h"

#include <mutex>
#include <string>
#include <utility>

#include "kernels/cpu/cpu_backend.h"
#ifdef TINYGROK_HAVE_CUDA
#include "kernels/cuda/registration.h"
#endif

namespace tg {

namespace {
std::vector<Backend*>& cuda_backends() {  // by device index
  // Never destroyed, like the backends it lists: they outlive every static that may use them.
  static auto* backends = new std::vector<Backend*>();
  return *backends;
}

// Why there is no CUDA backend, for the error message.
std::string& cuda_missing_reason() {
  static std::string reason = "this build of tinygrok has no CUDA backend";
  return reason;
}
}  // namespace

double cross_entropy_row_scale(ReduceOp reduction, int64_t rows) {
  return reduction == ReduceOp::Mean ? 1.0 / static_cast<double>(rows) : 1.0;
}

// --- default implementations: compositions of the pure primitives ----------------------------

std::pair<Tensor, Tensor> Backend::reduce_sum_pair(const Tensor& x, const std::vector<int>& axes_a,
                                                   const std::vector<int>& axes_b) {
  return {reduce(ReduceOp::Sum, x, axes_a), reduce(ReduceOp::Sum, x, axes_b)};
}

void Backend::matmul_into_grouped(const std::vector<Tensor>& as, const std::vector<Tensor>& bs,
                                  const std::vector<Tensor>& outs) {
  check(as.size() == bs.size() && as.size() == outs.size(), "matmul_into_grouped: ", as.size(),
        " left operands, ", bs.size(), " right operands and ", outs.size(), " outputs");
  for (size_t g = 0; g < as.size(); ++g) matmul_into(as[g], bs[g], outs[g]);
}

Tensor Backend::matmul_sum(const std::vector<Tensor>& as, const std::vector<Tensor>& bs,
                           const Tensor& residual) {
  check_matmul_sum_args(as, bs, residual);
  Tensor sum;
  for (size_t g = 0; g < as.size(); ++g) {
    const Tensor product = matmul(as[g], bs[g]);
    sum = sum.defined() ? binary(BinaryOp::Add, sum, product) : product;
  }
  if (sum.dim() > 2) {
    std::vector<int> batch_axes(static_cast<size_t>(sum.dim() - 2));
    for (size_t i = 0; i < batch_axes.size(); ++i) batch_axes[i] = static_cast<int>(i);
    sum = reduce(ReduceOp::Sum, sum, batch_axes).reshape({sum.size(-2), sum.size(-1)});
  }
  return residual.defined() ? binary(BinaryOp::Add, residual, sum) : sum;
}

void check_matmul_sum_args(const std::vector<Tensor>& as, const std::vector<Tensor>& bs,
                           const Tensor& residual) {
  check(!as.empty() && as.size() == bs.size(), "matmul_sum: ", as.size(), " left and ",
        bs.size(), " right operands (at least one of each, as many of each)");
  const Tensor& a = as[0];
  const Tensor& b = bs[0];
  check(a.dim() >= 2 && b.dim() == a.dim() && a.size(-1) == b.size(-2) &&
            std::equal(a.shape().begin(), a.shape().end() - 2, b.shape().begin()),
        "matmul_sum: ", shape_str(a.shape()), " @ ", shape_str(b.shape()),
        ": must be [..., M, K] @ [..., K, N] with the same batch axes");
  for (size_t g = 1; g < as.size(); ++g)
    check(as[g].shape() == a.shape() && bs[g].shape() == b.shape() &&
              as[g].dtype() == a.dtype() && bs[g].dtype() == a.dtype(),
          "matmul_sum: product ", g, " is ", shape_str(as[g].shape()), " @ ",
          shape_str(bs[g].shape()), ", product 0 ", shape_str(a.shape()), " @ ",
          shape_str(b.shape()), ": all must have one shape and dtype");
  if (residual.defined())
    check(residual.dim() == 2 && residual.size(0) == a.size(-2) &&
              residual.size(1) == b.size(-1) && residual.dtype() == a.dtype(),
          "matmul_sum: residual ", shape_str(residual.shape()), " ", dtype_name(residual.dtype()),
          " must be [", a.size(-2), ", ", b.size(-1), "] ", dtype_name(a.dtype()));
}

Tensor Backend::matmul(const Tensor& a, const Tensor& b) {
  Shape out_shape(a.shape().begin(), a.shape().end() - 1);
  out_shape.push_back(b.shape().back());
  Tensor out = Tensor::empty(out_shape, a.dtype(), device());
  matmul_into(a, b, out);
  return out;
}

void Backend::cross_entropy_with_grad(const Tensor& logits, const Tensor& targets,
                                      ReduceOp reduction, Tensor& loss, Tensor& dlogits) {
  check(reduction == ReduceOp::Sum || reduction == ReduceOp::Mean,
        "cross_entropy_with_grad: the reduction must be a sum or a mean");
  Tensor rows, shifted_logsumexp;
  cross_entropy(logits, targets, rows, shifted_logsumexp);
  loss = reduce(reduction, rows, {0}).view({});
  Tensor row_grad = Tensor::empty({logits.size(0)}, logits.dtype(), device());
  fill(row_grad, cross_entropy_row_scale(reduction, logits.size(0)));
  dlogits = cross_entropy_backward(logits, targets, shifted_logsumexp, row_grad);
}

Tensor Backend::embed_with_positions(const Tensor& W_E, const Tensor& W_pos,
                                     const Tensor& tokens) {
  check_embedding_positions("embed_with_positions", tokens, W_pos.size(0));
  const int64_t batch = tokens.size(0), len = tokens.size(1), width = W_E.size(1);
  const Tensor gathered = index_select(W_E, tokens);  // [B, T, D]
  return binary(BinaryOp::Add, gathered,
                W_pos.detach().slice(0, 0, len).unsqueeze(0).expand({batch, len, width}));
}

void Backend::embed_with_positions_backward(const Tensor& dy, const Tensor& tokens,
                                            int64_t vocab, int64_t n_pos, Tensor& dW_E,
                                            Tensor& dW_pos) {
  check_embedding_positions("embed_with_positions_backward", tokens, n_pos, dy);
  const int64_t len = tokens.size(1), width = dy.size(2);
  dW_E = index_add(dy, tokens, vocab);
  const Tensor column_sums = reduce(ReduceOp::Sum, dy, {0}).view({len, width});  // [T, D]
  if (len == n_pos) {
    dW_pos = column_sums;
    return;
  }
  dW_pos = Tensor::empty({n_pos, width}, dy.dtype(), device());
  fill(dW_pos, 0);
  copy(column_sums, dW_pos.slice(0, 0, len));
}

void Backend::linear_backward(const Tensor& dy, const Tensor& x, const Tensor& W,
                              const Tensor& saved, Activation act, bool with_dbias,
                              const Tensor& dx_residual, const Tensor& dx_relu_mask, Tensor& dx,
                              Tensor& dW, Tensor& dbias) {
  check_dx_extras(dx_residual, dx_relu_mask, dy, W);
  dx = dW = dbias = Tensor();
  if (with_dbias) dbias = Tensor::empty({dy.size(1)}, dy.dtype(), device());
  // Identity without a bias has dpre = dy: nothing to compute.
  const Tensor dpre = act == Activation::Identity && !with_dbias
                          ? dy
                          : activation_backward(dy, saved.defined() ? saved : dy, act, dbias);
  if (W.defined() && x.defined())  // independent: the backend may overlap them
    matmul_pair(dpre, W.transpose(0, 1), dx, x.transpose(0, 1), dpre, dW);
  else if (W.defined())
    dx = matmul(dpre, W.transpose(0, 1));
  else if (x.defined())
    dW = matmul(x.transpose(0, 1), dpre);
  if (dx_residual.defined()) dx = binary(BinaryOp::Add, dx_residual, dx);
  if (dx_relu_mask.defined())
    dx = activation_backward(dx.contiguous(), dx_relu_mask, Activation::Relu, Tensor());
}

void check_embedding_positions(const char* op, const Tensor& tokens, int64_t n_pos,
                               const Tensor& dy) {
  check(tokens.dim() == 2 && tokens.size(1) <= n_pos, op, ": tokens ",
        shape_str(tokens.shape()), " must be [B, T] with T <= ", n_pos, " positions");
  check(!dy.defined() || (dy.dim() == 3 && dy.size(0) == tokens.size(0) &&
                          dy.size(1) == tokens.size(1)),
        op, ": dy ", shape_str(dy.defined() ? dy.shape() : Shape{}), " must be [",
        tokens.size(0), ", ", tokens.size(1), ", D], the tokens' [B, T] and a row each");
}

void check_dx_extras(const Tensor& dx_residual, const Tensor& dx_relu_mask, const Tensor& dy,
                     const Tensor& W) {
  for (const auto& [t, name] : {std::pair{&dx_residual, "dx_residual"},
                                std::pair{&dx_relu_mask, "dx_relu_mask"}}) {
    if (!t->defined()) continue;
    check(W.defined(), "linear_backward: a ", name, " without W: no dx to apply it to");
    check(t->dim() == 2 && t->size(0) == dy.size(0) && t->size(1) == W.size(0) &&
              t->dtype() == dy.dtype(),
          "linear_backward: ", name, " ", shape_str(t->shape()), " ", dtype_name(t->dtype()),
          " must be dx's [", dy.size(0), ", ", W.size(0), "] ", dtype_name(dy.dtype()));
  }
  check(!dx_relu_mask.defined() || dx_relu_mask.is_contiguous(),
        "linear_backward: dx_relu_mask must be contiguous");
}

void Backend::fill_iota(const Tensor& dst) {
  check(dst.dtype() == DType::Int64 && dst.is_contiguous(),
        "fill_iota: destination must be contiguous int64, got ", dtype_name(dst.dtype()), " ",
        shape_str(dst.shape()));
  std::vector<int64_t> values(static_cast<size_t>(dst.numel()));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int64_t>(i);
  if (!values.empty()) copy_from_host(values.data(), dst);
}

std::unique_ptr<CapturedWork> Backend::capture(const std::function<void()>&) {
  throw Error(cat(device().str(), ": capture: this backend cannot record work for replay"));
}

void register_backend(Device device, Backend* backend) {
  check(!device.is_cpu(), "register_backend: the CPU backend is built in");
  check(device.index == static_cast<int>(cuda_backends().size()),
        "register_backend: CUDA devices register in index order, got ", device.str());
  cuda_backends().push_back(backend);
}

Backend& backend_for(Device device) {
  if (device.is_cpu()) {
    static CpuBackend cpu;
    return cpu;
  }
#ifdef TINYGROK_HAVE_CUDA
  static std::once_flag cuda_probed;
  std::call_once(cuda_probed, [] {
    if (std::string why = cuda::register_backends(); !why.empty()) cuda_missing_reason() = why;
  });
#endif
  // Every op asks for its backend: the messages are built only when they are thrown.
  const int count = static_cast<int>(cuda_backends().size());
  if (count == 0) throw Error(cat("device ", device.str(), ": ", cuda_missing_reason()));
  if (device.index < 0 || device.index >= count)
    throw Error(cat("device ", device.str(), ": this machine has ",
                    count == 1 ? std::string("only 1 CUDA device (cuda:0)")
                               : cat(count, " CUDA devices (cuda:0 to cuda:", count - 1, ")")));
  return *cuda_backends()[device.index];
}

}  // namespace tg
