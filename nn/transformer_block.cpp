// TransformerBlock: residual attention + MLP with none / pre / post LayerNorm.
#include "nn/transformer_block.h"

#include "autograd/ops.h"

namespace tg::nn {

TransformerBlock::TransformerBlock(const TransformerConfig& config, Generator& gen)
    : ln_mode_(config.ln) {
  const bool has_ln = config.ln != LayerNormMode::None;
  if (has_ln) ln1_ = register_module("ln1", std::make_shared<LayerNorm>(config.d_model));
  attn_ = register_module("attn", std::make_shared<Attention>(config.d_model, config.n_heads,
                                                              config.d_head, gen, config.attn_bias));
  if (has_ln) ln2_ = register_module("ln2", std::make_shared<LayerNorm>(config.d_model));
  mlp_ = register_module("mlp",
                         std::make_shared<MLPBlock>(config.d_model, config.d_mlp, config.act, gen));
  attn_dropout_ = register_module("attn_dropout", std::make_shared<Dropout>(config.dropout, gen));
  mlp_dropout_ = register_module("mlp_dropout", std::make_shared<Dropout>(config.dropout, gen));
}

Tensor TransformerBlock::attention_input(const Tensor& x) const {
  return ln_mode_ == LayerNormMode::Pre ? ln1_->forward(x) : x;
}

Tensor TransformerBlock::after_attention(const Tensor& residual_sum) const {
  // h + mlp(in): the MLP's last GEMM adds h as it stores, unless a dropout mask must come between.
  const auto residual_mlp = [&](const Tensor& h, const Tensor& in) {
    if (mlp_dropout_->active())
      return h + mlp_dropout_->forward(mlp_->forward(in));
    return mlp_->forward(in, h);
  };
  switch (ln_mode_) {
    case LayerNormMode::None: return residual_mlp(residual_sum, residual_sum);
    case LayerNormMode::Pre: return residual_mlp(residual_sum, ln2_->forward(residual_sum));
    case LayerNormMode::Post: {
      const Tensor h = ln1_->forward(residual_sum);
      return ln2_->forward(residual_mlp(h, h));
    }
  }
  throw Error("TransformerBlock: unknown layer norm mode");
}

Tensor TransformerBlock::forward(const Tensor& x, int64_t queries) const {
  check(x.dim() == 3, "TransformerBlock: x must be [B, T, d_model], got ", shape_str(x.shape()));
  const int64_t len = x.size(1);
  if (queries < 0) queries = len;
  check(queries >= 1 && queries <= len, "TransformerBlock: queries must be in [1, ", len,
        "], got ", queries);
  const Tensor x_sel = queries == len ? x : x.slice(1, len - queries, len);
  return after_attention(x_sel +
                         attn_dropout_->forward(attn_->forward(attention_input(x), queries)));
}

Tensor TransformerBlock::forward_table(const Tensor& table, const Tensor& q_rows,
                                       const Tensor& kv_rows) const {
  // The residual stream's rows are the table's own: the attention kernel adds them, unless a
  // dropout mask must come between.
  if (attn_dropout_->active())
    return after_attention(
        embedding(table, q_rows) +
        attn_dropout_->forward(attn_->forward_table(attention_input(table), q_rows, kv_rows)));
  return after_attention(attn_->forward_table(attention_input(table), q_rows, kv_rows, table));
}

Tensor TransformerBlock::forward_reference(const Tensor& x) const {
  switch (ln_mode_) {
    case LayerNormMode::None: {
      const Tensor h = x + attn_dropout_->forward(attn_->forward_reference(x));
      return h + mlp_dropout_->forward(mlp_->forward_reference(h));
    }
    case LayerNormMode::Pre: {
      const Tensor h = x + attn_dropout_->forward(attn_->forward_reference(ln1_->forward(x)));
      return h + mlp_dropout_->forward(mlp_->forward_reference(ln2_->forward(h)));
    }
    case LayerNormMode::Post: {
      const Tensor h = ln1_->forward(x + attn_dropout_->forward(attn_->forward_reference(x)));
      return ln2_->forward(h + mlp_dropout_->forward(mlp_->forward_reference(h)));
    }
  }
  throw Error("TransformerBlock: unknown layer norm mode");
}

}  // namespace tg::nn
