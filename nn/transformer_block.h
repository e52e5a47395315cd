// TransformerBlock: attention and MLP sublayers on the residual stream, with LayerNorm placed by
// the config's mode:
//   None: x = x + attn(x);       x = x + mlp(x)
//   Pre:  x = x + attn(ln1(x));  x = x + mlp(ln2(x))
//   Post: x = ln1(x + attn(x));  x = ln2(x + mlp(x))
// Parameters: ln1.{w,b} (Pre/Post), attn.*, ln2.{w,b} (Pre/Post), mlp.*, in that order.
#pragma once

#include <memory>

#include "core/random.h"
#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/layer_norm.h"
#include "nn/mlp_block.h"
#include "nn/module.h"
#include "nn/transformer_config.h"

namespace tg::nn {

class TransformerBlock : public Module {
 public:
  // Draws attn's then mlp's weights from gen. gen also drives dropout, so it must outlive the block.
  TransformerBlock(const TransformerConfig& config, Generator& gen);
  // [B, T, d_model] -> [B, Tq, d_model]: the block's output at the last Tq = `queries` positions
  // (all T when -1), which is all a later block's keys and values or the read-out need.
  Tensor forward(const Tensor& x, int64_t queries = -1) const;
  // The same at every position, composed of elementary ops: the reference for tests.
  Tensor forward_reference(const Tensor& x) const;

  // The first block's fast path: its input is a (position, token) table [R, d_model] read
  // through int64 row indices q_rows [B, Tq] (the last Tq positions) and kv_rows [B, T]; the
  // attention's input (ln1 under pre-LN) is a function of each position alone, so it is applied
  // to the table too. -> [B, Tq, d_model].
  Tensor forward_table(const Tensor& table, const Tensor& q_rows, const Tensor& kv_rows) const;

  const Attention& attn() const { return *attn_; }
  const MLPBlock& mlp() const { return *mlp_; }

 private:
  // The attention's input: ln1(x) under pre-LN, x otherwise.
  Tensor attention_input(const Tensor& x) const;
  // Everything after attention, given x + attn(x) [B, Tq, d_model] at the query positions (the
  // residual stream there plus the attention's output).
  Tensor after_attention(const Tensor& residual_sum) const;

  LayerNormMode ln_mode_;
  std::shared_ptr<LayerNorm> ln1_, ln2_;  // null when ln_mode_ is None
  std::shared_ptr<Attention> attn_;
  std::shared_ptr<MLPBlock> mlp_;
  std::shared_ptr<Dropout> attn_dropout_, mlp_dropout_;
};

}  // namespace tg::nn
