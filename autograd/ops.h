// The differentiable ops: each checks its inputs, runs a backend primitive, and records its
// backward node when an input requires grad. One file per family under autograd/ops/ holds the
// forward and the backward of each op side by side.
#pragma once

#include <vector>

#include "core/activation.h"
#include "core/random.h"
#include "core/tensor.h"

namespace tg {

// --- elementwise (autograd/ops/elementwise.cpp); binary ops broadcast like NumPy ---------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
// On int64, div truncates toward zero, as C++ and torch.div(..., rounding_mode="trunc") do
// (PyTorch's plain `/` would return floats); a zero divisor is an error, INT64_MIN / -1 wraps.
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);  // exact (erf) form, as torch.nn.GELU()
Tensor tanh(const Tensor& x);
Tensor scale(const Tensor& x, double factor);  // x * factor
// Comparisons: 1 where true, 0 where false, in the inputs' dtype; not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// x where mask is 0, value where mask is nonzero; mask broadcasts to x (causal masks).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
// A scalar operand becomes a 0-d tensor of the other operand's dtype and device.
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// --- reductions (autograd/ops/reduce.cpp); empty axes = all axes -----------------------------
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
// Gradient flows to the maxima, split evenly among ties (as torch.amax).
Tensor max(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);  // int64, not differentiable

// --- linear algebra (autograd/ops/matmul.cpp) ------------------------------------------------
// [..., M, K] @ [..., K, N] with broadcast batch axes; 1-D operands as in numpy.matmul.
Tensor matmul(const Tensor& a, const Tensor& b);
// Per-head products (autograd/ops/head_matmul.cpp): x [N, H, d] (a broadcast view is fine),
// W [H, d, e] -> [N, H, e], y[n, h] = x[n, h] @ W[h], as one batched product written in place.
Tensor head_matmul(const Tensor& x, const Tensor& W);

// --- neural-network ops (autograd/ops/softmax.cpp, loss.cpp, index.cpp, norm.cpp, ...) -------
Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);
// Causal attention (see Backend::attention): q [B, Tq, H, Dh], k, v [B, T, H, Dh] ->
// [B, Tq, H, Dh], query i at position T - Tq + i; scores scaled by `scale`. Fused: one pass per
// (batch, head). Backward computes the probabilities again from each row's softmax maximum and
// sum; they are kept only when asked for: a non-null `pattern` receives them, [B, H, Tq, T]
// (0 where masked; for analysis, not differentiable).
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                        Tensor* pattern = nullptr);
// The same with q, k, v rows read through int64 index tables: q_table[q_rows [B, Tq]] and
// k_table, v_table[kv_rows [B, T]] (tables [rows, H, Dh], values [rows, H, Dv]) ->
// [B, Tq, H, Dv], or [B, Tq, Dv] summed over the heads when `sum_heads`, without gathering
// them; backward scatter-adds into the tables. With sum_heads, a residual table [Rq, Dv] (a row
// per q_table row) may come too: its rows at q_rows are added to the output, as
// embedding(residual, q_rows) + table_attention(...) to the bit, in the same kernel. `pattern`
// as causal_attention's.
Tensor table_attention(const Tensor& q_table, const Tensor& k_table, const Tensor& v_table,
                       const Tensor& q_rows, const Tensor& kv_rows, double scale,
                       bool sum_heads = false, const Tensor& residual = Tensor(),
                       Tensor* pattern = nullptr);
// A whole attention layer without biases over a table of rows (a first layer's embedding
// table [R, d_model]; autograd/ops/table_attention_layer.cpp): each head's q, k, v rows
// table @ W_Q[h], W_K[h], W_V[h] ([H, d_model, d_head]), the values through W_O[h]
// ([H, d_head, d_out]), then table_attention(..., sum_heads, residual) at q_rows and kv_rows
// -> [B, Tq, d_out] (a residual table [R, d_out] or undefined). The composition of head_matmul
// and table_attention to the bit, in fewer launches: the three projections (and their weight
// gradients) as one grouped product, the table's gradient as one sum of all the per-head
// products, which takes the residual's gradient too when the residual is the table itself.
// `pattern` as causal_attention's.
Tensor table_attention_layer(const Tensor& table, const Tensor& W_Q, const Tensor& W_K,
                             const Tensor& W_V, const Tensor& W_O, const Tensor& q_rows,
                             const Tensor& kv_rows, double scale,
                             const Tensor& residual = Tensor(), Tensor* pattern = nullptr);
enum class Reduction { Mean, Sum, None };
// logits [N, C], int64 targets [N] in [0, C): -log softmax(logits)[n, target[n]], reduced.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets,
                     Reduction reduction = Reduction::Mean);
// The same with StableMax in place of softmax (Prieto et al. 2025; autograd/ops/stablemax.cpp):
// -log(s(logits)[n, target[n]] / sum_j s(logits)[n, j]), s(x) = x + 1 (x >= 0), 1 / (1 - x)
// (x < 0). Composed of elementwise ops and cross_entropy, so it runs on every device.
Tensor stablemax_cross_entropy(const Tensor& logits, const Tensor& targets,
                               Reduction reduction = Reduction::Mean);
// x [..., in] @ W [in, out] + b [out] (b may be undefined), then act -> [..., out]: a whole
// layer as one op, with the bias and activation fused into one pass over the product. A
// residual [..., out] (a residual block's x in x + f(x)) is added after the activation, as
// linear(...) + residual gives it to the bit, in the same pass.
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& b,
              Activation act = Activation::Identity, const Tensor& residual = Tensor());
// Two linear layers as one op (autograd/ops/mlp.cpp): act(x @ W_in + b_in) @ W_out + b_out
// (+ residual), x [..., in], W_in [in, hidden], W_out [hidden, out], biases optional. The
// values of linear(linear(x, W_in, b_in, act), W_out, b_out, Identity, residual); for ReLU the
// backward applies the mask as the second layer's input-gradient GEMM stores it, so the first
// layer's GEMMs read a plain gradient.
Tensor mlp(const Tensor& x, const Tensor& W_in, const Tensor& b_in, Activation act,
           const Tensor& W_out, const Tensor& b_out, const Tensor& residual = Tensor());
// table [V, D...], int64 index of any shape -> [index.shape..., D...]; backward scatter-adds.
Tensor embedding(const Tensor& table, const Tensor& index);
// W_E [V, D], W_pos [P, D], int64 tokens [B, T], T <= P -> [B, T, D]:
// embedding(W_E, tokens) + W_pos[:T], fused (autograd/ops/embedding.cpp).
Tensor embed_positions(const Tensor& W_E, const Tensor& W_pos, const Tensor& tokens);
Tensor one_hot(const Tensor& index, int64_t classes, DType dtype = DType::Float32);
// Normalises the last axis; weight and bias [D] are optional (pass undefined tensors).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// Zeroes each element with probability p and scales the rest by 1/(1-p); identity when !training.
Tensor dropout(const Tensor& x, double p, bool training = true,
               Generator& gen = default_generator());
Tensor cat(const std::vector<Tensor>& tensors, int64_t axis = 0);

}  // namespace tg
