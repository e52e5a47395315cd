// Attention: causal multi-head self-attention over [B, T, H, d_head] tables.
//
// Each projection is one batched product over the heads (head_matmul): the rows of x, viewed once
// for every head (stride 0), times each head's W [d_model, d_head], written straight into the
// [rows, H, d_head] table the fused attention kernel reads, with no copy of W into one
// [d_model, H * d_head] matrix. The output projection z as [B*T, H*d_head] times W_O as
// [H*d_head, d_model] also sums over the heads. On a table of rows without biases (the first
// layer's fast path) the whole layer is one op, table_attention_layer, whose three projections
// run as one grouped product.
#include "nn/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "core/factories.h"

namespace tg::nn {

namespace {

// [T, T], 1 where the key comes after the query (masked), 0 elsewhere.
Tensor causal_mask(int64_t len, Device device) {
  std::vector<int64_t> mask(static_cast<size_t>(len * len), 0);
  for (int64_t q = 0; q < len; ++q)
    for (int64_t k = q + 1; k < len; ++k) mask[static_cast<size_t>(q * len + k)] = 1;
  return from_vector(mask, {len, len}, device);
}

}  // namespace

Attention::Attention(int64_t d_model, int64_t n_heads, int64_t d_head, Generator& gen, bool bias)
    : d_model_(d_model), n_heads_(n_heads), d_head_(d_head) {
  check(d_model > 0 && n_heads > 0 && d_head > 0,
        "Attention: d_model, n_heads and d_head must be positive, got ", d_model, ", ", n_heads,
        " and ", d_head);
  const double std = 1 / std::sqrt(static_cast<double>(d_model));
  W_Q_ = register_parameter("W_Q", normal({n_heads, d_model, d_head}, 0, std, gen));
  W_K_ = register_parameter("W_K", normal({n_heads, d_model, d_head}, 0, std, gen));
  W_V_ = register_parameter("W_V", normal({n_heads, d_model, d_head}, 0, std, gen));
  W_O_ = register_parameter("W_O", normal({n_heads, d_head, d_model}, 0, std, gen));
  if (bias) {
    b_Q_ = register_parameter("b_Q", zeros({n_heads, d_head}));
    b_K_ = register_parameter("b_K", zeros({n_heads, d_head}));
    b_V_ = register_parameter("b_V", zeros({n_heads, d_head}));
    b_O_ = register_parameter("b_O", zeros({d_model}));
  }
}

namespace {

// x [..., d_model] as [rows, H, d_model], the same row for every head (stride 0): the input of
// the projections. Q, K and V share one view, so backward sums their gradients over the heads
// once.
Tensor rows_per_head(const Tensor& x, int64_t heads) {
  const Tensor rows = x.reshape({-1, x.size(-1)});
  return rows.unsqueeze(1).expand({rows.size(0), heads, rows.size(1)});
}

// x_heads [rows, H, d_model] through every head's W [H, d_model, d_head] (+ bias [H, d_head]) ->
// [rows, H, d_head], reshaped to [batch..., H, d_head].
Tensor project_heads(const Tensor& x_heads, const Tensor& W, const Tensor& b,
                     Shape batch_shape) {
  Tensor out = head_matmul(x_heads, W);
  if (b.defined()) out = out + b;
  batch_shape.push_back(W.size(0));
  batch_shape.push_back(W.size(2));
  return out.reshape(batch_shape);
}

}  // namespace

// z [B, Tq, H, d_head] @ W_O as [H * d_head, d_model]: the head-wise products summed over heads.
Tensor Attention::project_out(const Tensor& z) const {
  return tg::linear(z.reshape({z.size(0), z.size(1), n_heads_ * d_head_}),
                    W_O_.reshape({n_heads_ * d_head_, d_model_}), b_O_);
}

double Attention::scale() const { return 1 / std::sqrt(static_cast<double>(d_head_)); }

Tensor Attention::forward_table(const Tensor& table, const Tensor& q_rows,
                                const Tensor& kv_rows, const Tensor& residual,
                                Tensor* pattern) const {
  check(table.dim() == 2 && table.size(1) == d_model_, "Attention: table must be [rows, d_model = ",
        d_model_, "], got ", shape_str(table.shape()));
  // Each head's output projection is folded into the value table, v_h @ W_O[h] per table row
  // ([R, H, d_model]), and the kernel sums the heads: B * Tq * H * T * d_model multiply-adds
  // instead of the B * Tq * H * d_head * d_model of projecting every example's output. Without
  // biases the layer is one op, whose products run grouped; with them, the composition.
  if (!b_Q_.defined())
    return table_attention_layer(table, W_Q_, W_K_, W_V_, W_O_, q_rows, kv_rows, scale(),
                                 residual, pattern);
  const Tensor x = rows_per_head(table, n_heads_);
  const Shape rows = {table.size(0)};
  const Tensor v_out = head_matmul(project_heads(x, W_V_, b_V_, rows), W_O_);  // [R, H, d_model]
  Tensor out = table_attention(project_heads(x, W_Q_, b_Q_, rows),
                               project_heads(x, W_K_, b_K_, rows), v_out, q_rows, kv_rows,
                               scale(), /*sum_heads=*/true, residual, pattern);
  return b_O_.defined() ? out + b_O_ : out;
}

Tensor Attention::forward(const Tensor& x, int64_t queries, Tensor* pattern) const {
  check(x.dim() == 3 && x.size(2) == d_model_, "Attention: x must be [B, T, d_model = ", d_model_,
        "], got ", shape_str(x.shape()));
  const int64_t len = x.size(1);
  if (queries < 0) queries = len;
  check(queries >= 1 && queries <= len, "Attention: queries must be in [1, ", len, "], got ",
        queries);
  const int64_t batch = x.size(0);
  const Tensor kv_in = rows_per_head(x, n_heads_);
  const Tensor q_in =
      queries == len ? kv_in : rows_per_head(x.slice(1, len - queries, len), n_heads_);
  return project_out(causal_attention(project_heads(q_in, W_Q_, b_Q_, {batch, queries}),
                                      project_heads(kv_in, W_K_, b_K_, {batch, len}),
                                      project_heads(kv_in, W_V_, b_V_, {batch, len}), scale(),
                                      pattern));
}

Tensor Attention::forward_reference(const Tensor& x) const {
  check(x.dim() == 3 && x.size(2) == d_model_, "Attention: x must be [B, T, d_model = ", d_model_,
        "], got ", shape_str(x.shape()));
  const int64_t batch = x.size(0), len = x.size(1), heads = n_heads_, d_head = d_head_;
  const Tensor rows = x.reshape({batch * len, d_model_});  // [B*T, d_model]

  // [B*T, d_model] @ [d_model, H*d_head] -> [B, T, H, d_head] (+ bias) -> [B, H, T, d_head]
  auto project = [&](const Tensor& W, const Tensor& b) {
    const Tensor all_heads = W.permute({1, 0, 2}).reshape({d_model_, heads * d_head});
    Tensor out = rows.matmul(all_heads).reshape({batch, len, heads, d_head});
    if (b.defined()) out = out + b;
    return out.permute({0, 2, 1, 3});
  };
  const Tensor q = project(W_Q_, b_Q_), k = project(W_K_, b_K_), v = project(W_V_, b_V_);

  Tensor scores = q.matmul(k.transpose(-2, -1)) * (1 / std::sqrt(static_cast<double>(d_head)));
  // -inf is safe: a causal row always keeps its diagonal, so softmax never sees a fully masked
  // row, and masked entries get probability 0 and gradient 0.
  scores = masked_fill(scores, causal_mask(len, x.device()),
                       -std::numeric_limits<double>::infinity());  // [B, H, T, T]
  const Tensor pattern = softmax(scores, -1);
  const Tensor z = pattern.matmul(v);  // [B, H, T, d_head]

  // [B*T, H*d_head] @ [H*d_head, d_model]: the head-wise products summed over heads.
  Tensor out = z.permute({0, 2, 1, 3})
                   .reshape({batch * len, heads * d_head})
                   .matmul(W_O_.reshape({heads * d_head, d_model_}));
  if (b_O_.defined()) out = out + b_O_;
  return out.reshape({batch, len, d_model_});
}

}  // namespace tg::nn
