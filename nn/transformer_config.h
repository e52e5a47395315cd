// TransformerConfig: the hyperparameters of nn::Transformer, and LayerNormMode with its names.
#pragma once

#include <cstdint>
#include <string>

#include "nn/activation.h"

namespace tg::nn {

// Where a block normalises: nowhere (Nanda), before each sublayer (GPT-2), or after each residual
// add (the original transformer).
enum class LayerNormMode { None, Pre, Post };

// "none", "pre" or "post"; otherwise tg::Error listing the valid names.
LayerNormMode parse_layer_norm_mode(const std::string& name);
const char* layer_norm_mode_name(LayerNormMode mode);

// The defaults are Nanda et al.'s model; set d_vocab, d_vocab_out and n_ctx (114, 113, 3 there).
struct TransformerConfig {
  int64_t d_vocab, d_vocab_out, n_ctx;
  int64_t d_model = 128, n_heads = 4, d_head = 32, d_mlp = 512, n_layers = 1;
  Activation act = Activation::Relu;
  LayerNormMode ln = LayerNormMode::None;
  bool attn_bias = false, unembed_bias = false;
  double dropout = 0;  // on the embeddings and on each sublayer's output before its residual add
};

// The number of parameters nn::Transformer(config) has, counted without building it; a double,
// since a mistyped size can give more than int64 counts.
double parameter_count(const TransformerConfig& config);

}  // namespace tg::nn
