// CudaBackend: the Backend primitives on one CUDA device. One instance per GPU, registered by
// kernels/cuda/registration.cpp; all its work runs on the device's stream (stream.h) and its
// memory comes from the device's caching allocator (device_caching_allocator.h).
//
// Every primitive, one family per file: memory.cu, random.cu, elementwise.cu, reduce.cu, matmul.cpp
// (float32, through the SGEMM family in sgemm/; linear_forward with the GEMM's fused epilogue),
// softmax.cu, cross_entropy.cu, index.cu, embedding.cu, layer_norm.cu, linear_epilogue.cu (with
// linear_backward: a ReLU layer's gradient GEMMs reading dy through the mask) and attention.cu.
#pragma once

#include "kernels/backend.h"

namespace tg::cuda {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index) : index_(index) {}

  Device device() const override { return Device::cuda(index_); }
  std::shared_ptr<Storage> allocate(size_t nbytes) override;

  void copy(const Tensor& src, const Tensor& dst) override;
  void add_into(const Tensor& src, const Tensor& dst) override;
  void fill(const Tensor& dst, double value) override;
  void fill_iota(const Tensor& dst) override;
  void fill_random(const Tensor& dst, RandomKind kind, uint64_t seed, uint64_t counter, double a,
                   double b) override;
  void copy_to_host(const Tensor& src_contiguous, void* host) override;
  void copy_from_host(const void* host, const Tensor& dst_contiguous) override;

  Tensor unary(UnaryOp op, const Tensor& x, double param) override;
  Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) override;
  Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) override;

  Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) override;
  std::pair<Tensor, Tensor> reduce_sum_pair(const Tensor& x, const std::vector<int>& axes_a,
                                            const std::vector<int>& axes_b) override;
  Tensor argmax(const Tensor& x, int axis) override;

  void matmul_into(const Tensor& a, const Tensor& b, const Tensor& out) override;
  void matmul_into_grouped(const std::vector<Tensor>& as, const std::vector<Tensor>& bs,
                           const std::vector<Tensor>& outs) override;
  Tensor matmul_sum(const std::vector<Tensor>& as, const std::vector<Tensor>& bs,
                    const Tensor& residual) override;
  Tensor linear_forward(const Tensor& x, const Tensor& W, const Tensor& bias, Activation act,
                        const Tensor& residual, Tensor* pre) override;

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
  void cross_entropy_with_grad(const Tensor& logits, const Tensor& targets, ReduceOp reduction,
                               Tensor& loss, Tensor& dlogits) override;
  void bias_activation(const Tensor& x, const Tensor& bias, Activation act, const Tensor& pre,
                       const Tensor& y) override;
  Tensor activation_backward(const Tensor& dy, const Tensor& saved, Activation act,
                             const Tensor& dbias) override;
  void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& W, const Tensor& saved,
                       Activation act, bool with_dbias, const Tensor& dx_residual,
                       const Tensor& dx_relu_mask, Tensor& dx, Tensor& dW,
                       Tensor& dbias) override;
  bool masks_dx_as_stored() const override { return true; }
  Tensor index_select(const Tensor& table, const Tensor& index) override;
  Tensor index_add(const Tensor& src, const Tensor& index, int64_t rows) override;
  // Up to four index_adds of one dtype in one launch (the attention backward's q, k, value and
  // residual tables): the same outputs, bit for bit, as one index_add each.
  struct IndexAdd {
    Tensor src, index;
    int64_t rows;
  };
  std::vector<Tensor> index_add_together(const std::vector<IndexAdd>& adds);
  Tensor embed_with_positions(const Tensor& W_E, const Tensor& W_pos,
                              const Tensor& tokens) override;
  void embed_with_positions_backward(const Tensor& dy, const Tensor& tokens, int64_t vocab,
                                     int64_t n_pos, Tensor& dW_E, Tensor& dW_pos) override;
  Tensor one_hot(const Tensor& index, int64_t classes, DType dtype) override;
  void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                  Tensor& mean, Tensor& rstd) override;
  void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                           const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dweight,
                           Tensor& dbias) override;
  void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq,
                 const AdamHyper& hyper, double* grad_norm_sq, double* weight_norm_sq) override;

  // A CUDA graph (cuda_graph.h).
  std::unique_ptr<CapturedWork> capture(const std::function<void()>& work) override;
  bool capturing() const override;
  // cudaProfilerStart / cudaProfilerStop on this device (profiler_range.cpp).
  void profiler_range(bool begin) override;

  int index() const { return index_; }

  // A device counter at zero, for a kernel whose last block to finish completes a reduction
  // (column_sums in linear_epilogue.cu) and sets it back to zero. The device's one stream runs
  // such kernels one after another, so one counter serves them all.
  unsigned long long* last_block_counter();

 private:
  const int index_;
  Tensor last_block_counter_;  // int64 [1]; backends are never destroyed, nor is it
};

}  // namespace tg::cuda
