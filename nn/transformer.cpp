// Transformer: embeddings, blocks, final LayerNorm and the last-position read-out.
#include "nn/transformer.h"

#include <cmath>
#include <string>

#include "autograd/ops.h"
#include "core/factories.h"

namespace tg::nn {

namespace {

void check_config(const TransformerConfig& c) {
  check(c.d_vocab > 0 && c.d_vocab_out > 0 && c.n_ctx > 0,
        "Transformer: d_vocab, d_vocab_out and n_ctx must be positive, got ", c.d_vocab, ", ",
        c.d_vocab_out, " and ", c.n_ctx);
  check(c.d_model > 0 && c.n_heads > 0 && c.d_head > 0 && c.d_mlp > 0,
        "Transformer: d_model, n_heads, d_head and d_mlp must be positive, got ", c.d_model, ", ",
        c.n_heads, ", ", c.d_head, " and ", c.d_mlp);
  check(c.n_layers >= 0, "Transformer: n_layers must be >= 0, got ", c.n_layers);
  check(c.dropout >= 0 && c.dropout < 1, "Transformer: dropout must be in [0, 1), got ", c.dropout);
}

}  // namespace

Transformer::Transformer(const TransformerConfig& config, Generator& gen) : config_(config) {
  check_config(config);
  // Construction order is registration order, so weights are drawn in named_parameters() order.
  embed_ = register_module("embed", std::make_shared<Embed>(config.d_vocab, config.d_model, gen));
  pos_embed_ =
      register_module("pos_embed", std::make_shared<PosEmbed>(config.n_ctx, config.d_model, gen));
  embed_dropout_ = register_module("embed_dropout", std::make_shared<Dropout>(config.dropout, gen));
  for (int64_t i = 0; i < config.n_layers; ++i)
    blocks_.push_back(register_module("blocks." + std::to_string(i),
                                      std::make_shared<TransformerBlock>(config, gen)));
  if (config.ln != LayerNormMode::None)
    ln_final_ = register_module("ln_final", std::make_shared<LayerNorm>(config.d_model));
  unembed_ = register_module(
      "unembed",
      std::make_shared<Unembed>(config.d_model, config.d_vocab_out,
                                1 / std::sqrt(static_cast<double>(config.d_vocab)), gen,
                                config.unembed_bias));
}

Tensor Transformer::forward(const Tensor& tokens) {
  if (is_training() && config_.dropout > 0) return forward_reference(tokens);
  const std::vector<int64_t> values =
      check_tokens("Transformer", tokens, 1, config_.n_ctx, config_.d_vocab);
  const int64_t batch = tokens.size(0), len = tokens.size(1), vocab = config_.d_vocab;
  const int64_t d_model = config_.d_model;

  // Row t * d_vocab + v of the table is the embedding of token v at position t. CPU tokens are
  // on the host already (check_tokens read them), and a loop there is 4x faster than the
  // broadcast add; on a GPU the rows are the tokens plus their positions' offsets, computed
  // there, with the offsets [n_ctx] made once (arange is built on the host, and a copy to the
  // GPU waits for it).
  Tensor rows;  // [B, T]
  if (tokens.device().is_cpu()) {
    std::vector<int64_t> row_values(values.size());
    for (size_t i = 0; i < values.size(); ++i)
      row_values[i] = static_cast<int64_t>(i % static_cast<size_t>(len)) * vocab + values[i];
    rows = from_vector(row_values, {batch, len});
  } else {
    if (!row_offsets_.defined() || row_offsets_.device() != tokens.device())
      row_offsets_ = arange(0, static_cast<double>(config_.n_ctx * vocab),
                            static_cast<double>(vocab), DType::Int64, tokens.device());
    rows = tokens + row_offsets_.slice(0, 0, len);
  }
  const Tensor table =
      (embed_->W_E().unsqueeze(0) + pos_embed_->W_pos().slice(0, 0, len).unsqueeze(1))
          .reshape({len * vocab, d_model});

  // The last position's rows, made contiguous once: each kernel that reads them (forward and
  // backward) would otherwise copy the strided view again.
  const Tensor last_rows = rows.slice(1, len - 1, len).contiguous();
  Tensor x;  // the residual stream at the positions still needed: [B, T] or, last, [B, 1]
  if (blocks_.empty()) {
    x = embedding(table, last_rows);
  } else {
    x = blocks_.front()->forward_table(table, blocks_.size() == 1 ? last_rows : rows, rows);
    for (size_t i = 1; i < blocks_.size(); ++i)
      x = blocks_[i]->forward(x, i + 1 == blocks_.size() ? 1 : -1);
  }
  x = x.reshape({batch, d_model});
  if (ln_final_) x = ln_final_->forward(x);
  return unembed_->forward(x);  // [B, d_vocab_out]
}

Tensor Transformer::forward_reference(const Tensor& tokens) {
  check_tokens("Transformer", tokens, 1, config_.n_ctx, config_.d_vocab);
  Tensor x = embed_dropout_->forward(embed_->forward(tokens) + pos_embed_->forward(tokens));
  for (const auto& block : blocks_) x = block->forward_reference(x);  // [B, T, d_model]
  if (ln_final_) x = ln_final_->forward(x);
  return unembed_->forward_reference(x.select(1, tokens.size(1) - 1));  // [B, d_vocab_out]
}

}  // namespace tg::nn
