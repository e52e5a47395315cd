// Backend: the small set of raw compute primitives a device implements (no autograd here).
//
// autograd/ops builds every differentiable op from these. Contracts shared by all primitives:
//  - inputs may be any strided view (including stride-0 broadcast views) unless a primitive says
//    otherwise; the caller has already checked shapes, dtypes and devices;
//  - outputs are freshly allocated, contiguous tensors of the documented shape, on this device;
//  - a backend reports unsupported dtypes with tg::Error naming the primitive.
// A new device (kernels/cuda) implements this interface and announces itself with
// register_backend().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "core/activation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "kernels/lr_rule.h"

namespace tg {

enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Sqrt, Tanh,
  Relu,
  Step,       // 0 where x <= 0, else 1 (NaN too): relu's derivative, 0 at the kink, as in PyTorch
  Gelu,       // exact: x * Phi(x)
  GeluGrad,   // d gelu / dx = Phi(x) + x * phi(x)
  PowScalar,  // x ^ param
  Scale,      // x * param
};

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, Eq, Ne, Lt, Le, Gt, Ge };

// Mean is the sum rounded to the dtype, then times 1 / count in double: scale(sum(x), 1 / count)
// to the bit, in one pass.
enum class ReduceOp : uint8_t { Sum, Mean, Max };

enum class RandomKind : uint8_t {
  Uniform,      // low + (high - low) * U[0, 1)
  Normal,       // mean + std * N(0, 1)
  DropoutMask,  // 1 / (1 - p) where U[0, 1) >= p, else 0   (param a = p)
};

// The hyper-parameters of one Adam or AdamW step (PyTorch's formulas, optim/adam.h).
struct AdamHyper {
  int64_t step = 1;  // t >= 1: the bias corrections are 1 - beta1^t and 1 - beta2^t
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0;  // 0 skips decay entirely (0 * p would be NaN where p is inf)
  bool decoupled = false;   // AdamW: p *= 1 - lr * weight_decay; else L2: g += weight_decay * p
  // Optional: the step count kept on the parameters' device, so that a step reads nothing from
  // the host and can be recorded once and replayed (a CUDA graph). When defined (int64 [1],
  // contiguous, on the parameters' device, holding the completed steps), adam_step increments
  // it and takes t from it and lr = lr_at(lr_rule, t - 1) there, instead of `step` and `lr`.
  Tensor device_steps;
  LrRule lr_rule;
};

// Device work recorded once by Backend::capture and queued again, unchanged, by each replay().
class CapturedWork {
 public:
  virtual ~CapturedWork() = default;
  // Queues the recorded work on the device's stream again, over the same memory; does not wait.
  virtual void replay() = 0;
  // How many device operations (kernels, copies, fills) one replay queues at once.
  virtual size_t operations() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::shared_ptr<Storage> allocate(size_t nbytes) = 0;

  // --- data movement --------------------------------------------------------------------
  // dst[i] = convert(src[i]) for views of equal shape; dst may be strided (not overlapping).
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  // dst[i] += convert(src[i]), likewise: a running sum kept in one kernel (Tensor::add_).
  virtual void add_into(const Tensor& src, const Tensor& dst) = 0;
  virtual void fill(const Tensor& dst, double value) = 0;
  virtual void fill_random(const Tensor& dst, RandomKind kind, uint64_t seed, uint64_t counter,
                           double a, double b) = 0;
  // dst[i] = i for a contiguous int64 dst: index rows made on the device, with no host copy
  // (which would wait, and which a recorded step cannot contain). By default through the host.
  virtual void fill_iota(const Tensor& dst);
  // Copies between this device and contiguous host memory of the tensor's dtype.
  virtual void copy_to_host(const Tensor& src_contiguous, void* host) = 0;
  virtual void copy_from_host(const void* host, const Tensor& dst_contiguous) = 0;

  // --- elementwise -------------------------------------------------------------------------
  virtual Tensor unary(UnaryOp op, const Tensor& x, double param) = 0;
  // a and b are already expanded to the output shape; comparisons give 1 or 0 in the input dtype.
  virtual Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) = 0;
  // x where mask == 0, value where mask != 0; mask (any dtype) already expanded to x's shape.
  virtual Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) = 0;

  // --- reductions ----------------------------------------------------------------------------
  // Reduces the listed axes (sorted, unique); the output keeps them as size-1 axes.
  virtual Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) = 0;
  // The sums of x over two sets of axes, reduce(Sum, x, axes_a) and reduce(Sum, x, axes_b) to
  // the bit: a broadcast add's two gradients. By default two reduce calls; a backend may take
  // both in one pass.
  virtual std::pair<Tensor, Tensor> reduce_sum_pair(const Tensor& x, const std::vector<int>& axes_a,
                                                    const std::vector<int>& axes_b);  // int64 index of the first maximum along `axis`; the output keeps it as a size-1 axis.
  virtual Tensor argmax(const Tensor& x, int axis) = 0;

  // --- linear algebra ------------------------------------------------------------------------
  // [..., M, K] @ [..., K, N] -> [..., M, N]; the batch axes of a and b are already expanded to
  // the output's batch shape. A fresh contiguous output, through matmul_into.
  Tensor matmul(const Tensor& a, const Tensor& b);
  // The same product written into `out`, [..., M, N] over that batch shape: a view whose last
  // axis is contiguous and whose rows and batch matrices may step by any stride, such as the
  // heads of an [N, H, e] tensor viewed as [H, N, e] (head_matmul writes its [N, H, e] output in
  // one batched product so). Only out's M x N elements are written.
  virtual void matmul_into(const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // Products of one shape over several sets of operands, outs[g] = as[g] @ bs[g] for each g
  // (each batched and written as by matmul_into): the attention's W_Q, W_K and W_V applied to
  // the same rows. By default one matmul_into each; a backend may run them as one launch.
  virtual void matmul_into_grouped(const std::vector<Tensor>& as, const std::vector<Tensor>& bs,
                                   const std::vector<Tensor>& outs);
  // residual + the sum over g and over the batch matrices i of as[g][i] @ bs[g][i]: [M, N], the
  // input gradient of rows that several batched products read (the attention's table through
  // each head of W_Q, W_K and W_V). as[g] [..., M, K] and bs[g] [..., K, N], batch axes already
  // expanded alike; residual [M, N] or undefined. By default the products of each g, added g by
  // g (0 first), then summed over the batch (reduce), then added to the residual.
  virtual Tensor matmul_sum(const std::vector<Tensor>& as, const std::vector<Tensor>& bs,
                            const Tensor& residual);
  // Two independent products, c1 = a1 @ b1 and c2 = a2 @ b2 (a layer's input and weight
  // gradients). A backend may run them concurrently; by default they run one after the other.
  virtual void matmul_pair(const Tensor& a1, const Tensor& b1, Tensor& c1, const Tensor& a2,
                           const Tensor& b2, Tensor& c2) {
    c1 = matmul(a1, b1);
    c2 = matmul(a2, b2);
  }

  // --- neural-network primitives -------------------------------------------------------------
  // softmax or log-softmax along `axis`.
  virtual Tensor softmax(const Tensor& x, int axis, bool log) = 0;
  // Given the forward output y and dy: dx = y * (dy - sum(dy * y)) for softmax,
  // dx = dy - exp(y) * sum(dy) for log-softmax.
  virtual Tensor softmax_backward(const Tensor& y, const Tensor& dy, int axis, bool log) = 0;
  // Causal attention over short sequences, with the heads as an axis and the q, k, v rows read
  // through index tables (so a first layer can attend over projected embedding-table rows without
  // gathering them per example): q_table [Rq, H, Dh], k_table and v_table [Rkv, H, Dh], all
  // contiguous; int64 q_rows [B, Tq] and kv_rows [B, T], Tq <= T. Query i of example b is
  // q_table[q_rows[b, i]], sits at position T - Tq + i, and attends with scores scaled by `scale`
  // to keys and values k_table[kv_rows[b, j]], v_table[kv_rows[b, j]] for j <= T - Tq + i.
  // Outputs z [B, Tq, H, Dh] and, for backward, each score row's softmax statistics
  // softmax_stats [B, H, Tq, 2]: the row's largest scaled score m and its sum of exp(S_ij - m)
  // (rounded to the dtype), from which the backward recomputes P_ij = exp(S_ij - m) / sum, as
  // the forward computed it. The probabilities themselves, the pattern [B, H, Tq, T] (0 where
  // masked), are written only when asked for (`pattern` not null): kept for analysis, never for
  // the backward. Dense q [B, Tq, H, Dh] is the table [B * Tq, H, Dh] with
  // q_rows[b, i] = b * Tq + i (and likewise k and v). Values may have their own width Dv
  // (v_table [Rkv, H, Dv]), and with `sum_heads` z is summed over the heads, [B, Tq, Dv]: a
  // value table already multiplied by each head's output projection then gives the attention
  // layer's output directly. With sum_heads, an optional residual table [Rq, Dv] (a row per
  // q_table row; undefined: none) is added too: z[b, i] = residual[q_rows[b, i]] + the heads'
  // sum, to the bit as that addition done afterwards, so the residual stream costs no gather.
  virtual void attention(const Tensor& q_table, const Tensor& k_table, const Tensor& v_table,
                         const Tensor& q_rows, const Tensor& kv_rows, double scale,
                         bool sum_heads, const Tensor& residual, Tensor& z,
                         Tensor& softmax_stats, Tensor* pattern) = 0;
  // Gradients with respect to the three tables (rows no example reads get 0), summed over the
  // batch in an order that does not depend on the thread count; when the forward had a residual
  // (passed again, only its shape is read), also dresidual = index_add(dz, q_rows, Rq).
  virtual void attention_backward(const Tensor& dz, const Tensor& q_table, const Tensor& k_table,
                                  const Tensor& v_table, const Tensor& q_rows,
                                  const Tensor& kv_rows, const Tensor& softmax_stats,
                                  double scale, bool sum_heads, const Tensor& residual,
                                  Tensor& dq_table, Tensor& dk_table, Tensor& dv_table,
                                  Tensor& dresidual) = 0;
  // logits [N, C], int64 targets [N] -> per-row loss [N] and, for backward, the shifted
  // log-sum-exp [N]: log(sum_c exp(logits[n, c] - max_c logits[n, c])). It lies in [0, log C], so
  // it keeps full precision in float32, where the plain log-sum-exp of logits near 1000 would not.
  virtual void cross_entropy(const Tensor& logits, const Tensor& targets, Tensor& loss,
                             Tensor& shifted_logsumexp) = 0;
  // dlogits [N, C] = (softmax(logits) - onehot(targets)) * row_grad[:, None].
  virtual Tensor cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                        const Tensor& shifted_logsumexp,
                                        const Tensor& row_grad) = 0;
  // Loss and gradient in one call, for a reduction whose per-row gradient is known before
  // backward (ReduceOp::Mean: 1 / N, ReduceOp::Sum: 1): loss [] is reduce(reduction) of the
  // per-row losses cross_entropy gives, to the bit, and dlogits [N, C] = (softmax(logits) -
  // onehot(targets)) * row_scale. By default the two primitives above and reduce; a backend may
  // fuse them into one pass over the logits that never writes the probabilities.
  virtual void cross_entropy_with_grad(const Tensor& logits, const Tensor& targets,
                                       ReduceOp reduction, Tensor& loss, Tensor& dlogits);
  // The epilogue of a linear layer in one pass over x [N, D] (contiguous) and bias [D] (may be
  // undefined): pre = x + bias and y = act(pre). Either output may be undefined (not written) or
  // alias x (in place); both are contiguous [N, D].
  virtual void bias_activation(const Tensor& x, const Tensor& bias, Activation act,
                               const Tensor& pre, const Tensor& y) = 0;
  // Its backward: dpre = dy * act'(pre), where `saved` is y for Identity and Relu (y <= 0 exactly
  // where pre <= 0; a NaN passes dy, as in PyTorch) and pre for Gelu and Square. When dbias [D]
  // is defined it receives the column sums of dpre, summed in an order that does not depend on
  // the thread count.
  virtual Tensor activation_backward(const Tensor& dy, const Tensor& saved, Activation act,
                                     const Tensor& dbias) = 0;
  // A linear layer's forward: y = act(x @ W + bias) + residual for x [N, K] and W [K, D] (2-D
  // views that matmul accepts), bias [D] or undefined, and residual [N, D] (any view: a residual
  // block's x, added after the activation) or undefined; returns y, fresh and contiguous [N, D].
  // When `pre` is not null it receives the pre-activation x @ W + bias, contiguous [N, D] (y
  // itself when there is neither a bias, nor an activation, nor a residual). By default matmul,
  // then bias_activation over its output, then an add; a backend may fuse the epilogue into the
  // GEMM, with the same bits.
  virtual Tensor linear_forward(const Tensor& x, const Tensor& W, const Tensor& bias,
                                Activation act, const Tensor& residual, Tensor* pre) {
    Tensor y = matmul(x, W);  // fresh and contiguous: the epilogue may overwrite it
    if (!bias.defined() && act == Activation::Identity) {
      if (pre) *pre = y;
    } else if (pre) {
      *pre = y;
      y = Tensor::empty(y.shape(), y.dtype(), y.device());
      bias_activation(*pre, bias, act, *pre, y);
    } else {
      bias_activation(y, bias, act, Tensor(), y);
    }
    return residual.defined() ? binary(BinaryOp::Add, y, residual) : y;
  }
  // A linear layer's backward from dy [N, D] (contiguous), given what its forward kept: x [N, K]
  // and W [K, D] (2-D views that matmul accepts) and `saved` as activation_backward takes it
  // (contiguous [N, D]; may be undefined for Identity). With dpre = dy * act'(saved) as
  // activation_backward gives it: dx = dpre @ W^T [N, K] when W is defined, dW = x^T @ dpre
  // [K, D] when x is defined (each left undefined otherwise: pass only what the wanted gradients
  // need), and with `with_dbias`, dbias [D] = the column sums of dpre, summed as
  // activation_backward sums them. A dx_residual [N, K] (undefined: none; only with W) is
  // added to dx, as dx_residual + dx: the gradient x's other consumers sent already. Then, with
  // dx_relu_mask [N, K] (contiguous; undefined: none; only with W), x is a ReLU's output and dx
  // goes on through that ReLU's backward: 0 where dx_relu_mask <= 0, as activation_backward
  // (Relu) gives it; every gradient of x must be in dx by then. By default those primitives
  // (matmul_pair for the two products, an add, activation_backward); a backend may apply act'
  // as the GEMMs load dy and never write dpre, and add dx_residual and apply dx_relu_mask as
  // dx is stored.
  virtual void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& W,
                               const Tensor& saved, Activation act, bool with_dbias,
                               const Tensor& dx_residual, const Tensor& dx_relu_mask, Tensor& dx,
                               Tensor& dW, Tensor& dbias);
  // Whether linear_backward applies a float32 dx_relu_mask as dx's GEMM stores it. Where it does
  // not (the default: a pass of its own), a ReLU layer's backward is cheaper left to the layer
  // below, whose activation_backward masks dy and sums the bias gradient in one pass.
  virtual bool masks_dx_as_stored() const { return false; }
  // table [V, ...], int64 index of any shape -> [index.shape..., ...]: out[i] = table[index[i]].
  virtual Tensor index_select(const Tensor& table, const Tensor& index) = 0;
  // The scatter-add adjoint: out [rows, ...] with out[index[i]] += src[i].
  virtual Tensor index_add(const Tensor& src, const Tensor& index, int64_t rows) = 0;
  // Token plus position embeddings: W_E [V, D] and W_pos [P, D] of one floating dtype, int64
  // tokens [B, T] with T <= P -> [B, T, D], out[b, t] = W_E[tokens[b, t]] + W_pos[t]. By default
  // index_select, then a broadcast add; a backend may do both in one pass.
  virtual Tensor embed_with_positions(const Tensor& W_E, const Tensor& W_pos,
                                      const Tensor& tokens);
  // Its backward from dy [B, T, D]: dW_E [vocab, D] as index_add(dy, tokens, vocab) gives it
  // (rows summed in increasing position), and dW_pos [n_pos, D] whose row t < T sums dy[b, t]
  // over b (floats in double, as reduce does) and whose rows t >= T are 0. Both in an order
  // that depends on neither thread count nor timing: bitwise reproducible.
  virtual void embed_with_positions_backward(const Tensor& dy, const Tensor& tokens,
                                             int64_t vocab, int64_t n_pos, Tensor& dW_E,
                                             Tensor& dW_pos);
  // int64 index of any shape -> [index.shape..., classes] of 0/1 in `dtype`.
  virtual Tensor one_hot(const Tensor& index, int64_t classes, DType dtype) = 0;
  // Layer norm over the last axis of x [..., D] with weight and bias [D] (either may be
  // undefined): y, and per-row mean and 1/std saved for backward.
  virtual void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                          Tensor& y, Tensor& mean, Tensor& rstd) = 0;
  virtual void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                   const Tensor& mean, const Tensor& rstd, Tensor& dx,
                                   Tensor& dweight, Tensor& dbias) = 0;

  // --- optimisers ----------------------------------------------------------------------------
  // One Adam/AdamW step, in place, over a list of parameters: params[i], exp_avg[i] (m) and
  // exp_avg_sq[i] (v) are updated from grads[i]. The four lists have one length; the four tensors
  // of an entry have one shape; all are contiguous, on this device, of one floating dtype for the
  // whole call. The step's scalars are computed in double and rounded to the dtype once
  // (kernels/adam_step.h); every element is then updated in the order of adam_lanes
  // (kernels/cpu/adam.cpp). Backends agree to the last bit or so: CUDA rounds every operation
  // (no FMA contraction) as the chain of elementwise ops would; the CPU's compiler may contract.
  // Norms, summed in double in an order that depends on neither the thread count nor the launch
  // geometry (so not in the same order on every backend): when grad_norm_sq is not null it
  // receives the sum of g^2 over every gradient element as read (before L2 decay is added);
  // when weight_norm_sq is not null, the sum of p^2 over every parameter element after the
  // update. Both are squares (callers add them across devices and take the root). Every input
  // is checked before anything is written.
  virtual void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                         const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq,
                         const AdamHyper& hyper, double* grad_norm_sq,
                         double* weight_norm_sq) = 0;

  // --- recording and replay ------------------------------------------------------------------
  // Runs `work` (host code that calls this backend, e.g. a training step) once while recording
  // the device work it queues instead of running it, and returns the recording: each replay()
  // queues the same kernels over the same addresses, with no allocation and no host wait (on
  // CUDA, a CUDA graph). The contract:
  //  - work must not read device data on the host (item, to_vector, a copy to the CPU) nor wait
  //    for the device: that throws, as does anything else work throws; the capture is then
  //    abandoned with an error saying why, and the backend stays usable;
  //  - checks that read a flag back to the host (index ranges of index_select, one_hot,
  //    embeddings, cross_entropy targets and attention rows; integer division by zero) are
  //    skipped while capturing: the caller must have run the same work eagerly first, which
  //    checked those very index tensors, and replays read whatever they hold then, unchecked;
  //  - what the host computes while recording is frozen into the recording (scalars, shapes,
  //    random (seed, counter) pairs): inputs change between replays only in place (copy_, fill_),
  //    and every tensor the work reads or writes must outlive the recording;
  //  - memory allocated while recording comes from a pool private to the recording, so its
  //    addresses (baked into the recording) are never handed to other code while it lives, even
  //    after the tensors that held them are freed; destroying the recording returns the pool.
  // By default (the CPU backend) it throws tg::Error: this backend cannot record.
  virtual std::unique_ptr<CapturedWork> capture(const std::function<void()>& work);
  // True while capture() is recording on this backend: code above the kernels (a model's token
  // check) skips its own host reads then, under the same contract.
  virtual bool capturing() const { return false; }

  // Begins (true) or ends (false) the range that a profiler started with collection off records:
  // on CUDA cudaProfilerStart and cudaProfilerStop, for `ncu --profile-from-start off` and `nsys
  // --capture-range=cudaProfilerApi`. Nothing on the CPU.
  virtual void profiler_range(bool begin) { (void)begin; }
};

// Throws tg::Error unless linear_backward's dx_residual and dx_relu_mask (each if defined) have
// dx's shape and dtype (the mask contiguous) and there is a W to make dx with.
void check_dx_extras(const Tensor& dx_residual, const Tensor& dx_relu_mask, const Tensor& dy,
                     const Tensor& W);

// Throws tg::Error unless tokens are [B, T] with T <= n_pos positions and dy (in the backward;
// undefined in the forward) is [B, T, D]: embed_with_positions's contract, which its kernels
// index by.
void check_embedding_positions(const char* op, const Tensor& tokens, int64_t n_pos,
                               const Tensor& dy = Tensor());

// Throws tg::Error unless matmul_sum's arguments fit together (shapes, dtypes), naming them.
void check_matmul_sum_args(const std::vector<Tensor>& as, const std::vector<Tensor>& bs,
                           const Tensor& residual);

// Each row's gradient under cross_entropy_with_grad's reduction of `rows` losses: 1 / rows for
// a mean, 1 for a sum.
double cross_entropy_row_scale(ReduceOp reduction, int64_t rows);

// The backend that owns `device`; throws a clear tg::Error when this build or machine has none,
// e.g. "device cuda:0: no CUDA device is available (cudaGetDeviceCount: ...)".
Backend& backend_for(Device device);

// For device runtimes to announce themselves: kernels/cuda registers one backend per GPU, in
// index order, the first time backend_for() is asked for a CUDA device.
void register_backend(Device device, Backend* backend);

}  // namespace tg
