// CpuBackend: the Backend primitives on the host, with Eigen for matmul and OpenMP for threads.
// Each family lives in its own file beside this one (memory, elementwise, reduce, matmul,
// softmax, index, layer_norm).
#pragma once

#include "kernels/backend.h"

namespace tg {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu(); }
  std::shared_ptr<Storage> allocate(size_t nbytes) override;

  void copy(const Tensor& src, const Tensor& dst) override;
  void add_into(const Tensor& src, const Tensor& dst) override;
  void fill(const Tensor& dst, double value) override;
  void fill_random(const Tensor& dst, RandomKind kind, uint64_t seed, uint64_t counter, double a,
                   double b) override;
  void copy_to_host(const Tensor& src_contiguous, void* host) override;
  void copy_from_host(const void* host, const Tensor& dst_contiguous) override;

  Tensor unary(UnaryOp op, const Tensor& x, double param) override;
  Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) override;
  Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) override;

  Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) override;
  Tensor argmax(const Tensor& x, int axis) override;

  void matmul_into(const Tensor& a, const Tensor& b, const Tensor& out) override;
  void matmul_pair(const Tensor& a1, const Tensor& b1, Tensor& c1, const Tensor& a2,
                   const Tensor& b2, Tensor& c2) override;

  Tensor softmax(const Tensor& x, int axis, bool log) override;
  Tensor softmax_backward(const Tensor& y, const Tensor& dy, int axis, bool log) override;
  void attention(const Tensor& q_table, const Tensor& k_table, const Tensor& v_table,
                 const Tensor& q_rows, const Tensor& kv_rows, double scale, bool sum_heads,
                 const Tensor& residual, Tensor& z, Tensor& softmax_stats,
                 Tensor* pattern) override;
  void attention_backward(const Tensor& dz, const Tensor& q_table, const Tensor& k_table,
                          const Tensor& v_table, const Tensor& q_rows, const Tensor& kv_rows,
                          const Tensor& softmax_stats, double scale, bool sum_heads,
                          const Tensor& residual, Tensor& dq_table, Tensor& dk_table,
                          Tensor& dv_table, Tensor& dresidual) override;
  void cross_entropy(const Tensor& logits, const Tensor& targets, Tensor& loss,
                     Tensor& shifted_logsumexp) override;
  Tensor cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                const Tensor& shifted_logsumexp, const Tensor& row_grad) override;
  void bias_activation(const Tensor& x, const Tensor& bias, Activation act, const Tensor& pre,
                       const Tensor& y) override;
  Tensor activation_backward(const Tensor& dy, const Tensor& saved, Activation act,
                             const Tensor& dbias) override;
  Tensor index_select(const Tensor& table, const Tensor& index) override;
  Tensor index_add(const Tensor& src, const Tensor& index, int64_t rows) override;
  Tensor one_hot(const Tensor& index, int64_t classes, DType dtype) override;
  void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                  Tensor& mean, Tensor& rstd) override;
  void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                           const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dweight,
                           Tensor& dbias) override;
  void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq,
                 const AdamHyper& hyper, double* grad_norm_sq, double* weight_norm_sq) override;
};

}  // namespace tg
