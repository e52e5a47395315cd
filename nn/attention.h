// Attention: causal multi-head self-attention with TransformerLens parameter names:
//   W_Q, W_K, W_V [n_heads, d_model, d_head], W_O [n_heads, d_head, d_model],
//   optional biases b_Q, b_K, b_V [n_heads, d_head] and b_O [d_model].
#pragma once

#include "core/random.h"
#include "nn/module.h"

namespace tg::nn {

class Attention : public Module {
 public:
  // Weights ~ N(0, 1) / sqrt(d_model) (Nanda et al.), drawn from gen in the order W_Q, W_K, W_V,
  // W_O; biases (when `bias`) start at 0.
  Attention(int64_t d_model, int64_t n_heads, int64_t d_head, Generator& gen, bool bias = false);

  // x [B, T, d_model] -> [B, Tq, d_model]: the attention output at the last Tq = `queries`
  // positions (all T when -1). Position t attends to positions <= t; scores are scaled by
  // 1/sqrt(d_head). Keys and values come from every position, queries only from those asked for.
  // A non-null `pattern` receives the attention probabilities [B, H, Tq, T] (for analysis; not
  // differentiable); otherwise they are not kept: the backward computes them again.
  Tensor forward(const Tensor& x, int64_t queries = -1, Tensor* pattern = nullptr) const;
  // The same at every position as the straightforward composition (batched matmuls, a causal
  // mask, softmax), kept as the reference the fast path is tested against.
  Tensor forward_reference(const Tensor& x) const;

  // The first layer's fast path: its input at (position t, token v) is a row of a table
  // [R, d_model], so queries, keys and values are projected once per table row and read
  // through int64 row indices q_rows [B, Tq] (the last Tq positions) and kv_rows [B, T] by the
  // fused attention -> [B, Tq, d_model]. Nothing per example is gathered, and the output
  // projection is applied to the value table rather than to every example. A residual table
  // [R, d_model] (undefined: none), the residual stream at each table row, is added at q_rows by
  // the same kernel: the block's x + attn(x) in one launch. `pattern` as forward's.
  Tensor forward_table(const Tensor& table, const Tensor& q_rows, const Tensor& kv_rows,
                       const Tensor& residual = Tensor(), Tensor* pattern = nullptr) const;

  const Tensor& W_Q() const { return W_Q_; }
  const Tensor& W_K() const { return W_K_; }
  const Tensor& W_V() const { return W_V_; }
  const Tensor& W_O() const { return W_O_; }

 private:
  Tensor project_out(const Tensor& z) const;
  double scale() const;  // of the scores: 1 / sqrt(d_head)

  int64_t d_model_, n_heads_, d_head_;
  Tensor W_Q_, W_K_, W_V_, W_O_;
  Tensor b_Q_, b_K_, b_V_, b_O_;  // undefined without bias
};

}  // namespace tg::nn
