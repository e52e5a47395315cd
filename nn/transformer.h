// Transformer: the decoder-only model of the grokking experiments (Nanda et al. by default):
// token + positional embedding, n_layers TransformerBlocks on the [B, T, d_model] residual
// stream, an optional final LayerNorm, and the unembedding read at the last position.
//
// Parameter names follow TransformerLens: embed.W_E, pos_embed.W_pos,
// blocks.{i}.{ln1, attn, ln2, mlp}.*, ln_final.{w,b} (when ln != None), unembed.W_U[, b_U].
#pragma once

#include <memory>
#include <vector>

#include "core/random.h"
#include "nn/dropout.h"
#include "nn/embed.h"
#include "nn/layer_norm.h"
#include "nn/model.h"
#include "nn/pos_embed.h"
#include "nn/transformer_block.h"
#include "nn/transformer_config.h"
#include "nn/unembed.h"

namespace tg::nn {

class Transformer : public Model {
 public:
  // Initialisation as Nanda et al.: every weight ~ N(0, 1) / sqrt(d_model) except
  // W_U ~ N(0, 1) / sqrt(d_vocab); biases 0; LayerNorm w = 1, b = 0. Weights are drawn from gen
  // in the order of named_parameters(), so (config, seed) reproduces a model. gen also drives
  // dropout, so it must outlive the model.
  Transformer(const TransformerConfig& config, Generator& gen);

  // int64 tokens [B, T] with 1 <= T <= n_ctx, values in [0, d_vocab) -> logits [B, d_vocab_out]
  // at position T - 1. The fast path computes only what those logits read:
  //  - the first block's input at (position t, token v) is W_E[v] + W_pos[t] (after ln1, under
  //    pre-LN), so its queries, keys and values are projected once per row of that
  //    [T * d_vocab, d_model] table (T * d_vocab rows instead of B * T), and the fused attention
  //    reads them by row index, scatter-adding its gradients back into the tables;
  //  - the last block computes queries, attention output and MLP at position T - 1 only (keys
  //    and values still at every position);
  //  - attention, each linear layer with its bias and activation, and the loss are fused ops.
  // In training with dropout > 0 every example has its own masks, so there is no table to
  // share: forward() then runs forward_reference().
  Tensor forward(const Tensor& tokens) override;
  // Every position through every block, composed of elementary ops.
  Tensor forward_reference(const Tensor& tokens) override;

  const TransformerConfig& config() const { return config_; }
  const Embed& embed() const { return *embed_; }
  const PosEmbed& pos_embed() const { return *pos_embed_; }
  const TransformerBlock& block(size_t i) const { return *blocks_.at(i); }
  const Unembed& unembed() const { return *unembed_; }

 private:
  TransformerConfig config_;
  std::shared_ptr<Embed> embed_;
  std::shared_ptr<PosEmbed> pos_embed_;
  std::shared_ptr<Dropout> embed_dropout_;
  std::vector<std::shared_ptr<TransformerBlock>> blocks_;
  std::shared_ptr<LayerNorm> ln_final_;  // null when config.ln is None
  std::shared_ptr<Unembed> unembed_;
  // forward()'s table row offsets t * d_vocab for t < n_ctx, int64 on the last GPU tokens' device.
  Tensor row_offsets_;
};

}  // namespace tg::nn
