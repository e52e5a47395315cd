// TransformerConfig: LayerNormMode names and the parameter count.
#include "nn/transformer_config.h"

#include "core/error.h"

namespace tg::nn {

LayerNormMode parse_layer_norm_mode(const std::string& name) {
  if (name == "none") return LayerNormMode::None;
  if (name == "pre") return LayerNormMode::Pre;
  if (name == "post") return LayerNormMode::Post;
  throw Error(cat("layer norm mode: unknown name '", name, "' (valid: none, pre, post)"));
}

const char* layer_norm_mode_name(LayerNormMode mode) {
  switch (mode) {
    case LayerNormMode::None: return "none";
    case LayerNormMode::Pre: return "pre";
    case LayerNormMode::Post: return "post";
  }
  return "?";
}

double parameter_count(const TransformerConfig& c) {
  const auto d_model = static_cast<double>(c.d_model), heads = static_cast<double>(c.n_heads);
  const auto d_head = static_cast<double>(c.d_head), d_mlp = static_cast<double>(c.d_mlp);
  const double layer_norm = c.ln == LayerNormMode::None ? 0 : 2 * d_model;  // w, b
  const double attention =
      4 * heads * d_model * d_head + (c.attn_bias ? 3 * heads * d_head + d_model : 0);
  const double mlp = 2 * d_model * d_mlp + d_mlp + d_model;
  const double block = attention + mlp + 2 * layer_norm;
  return static_cast<double>(c.d_vocab + c.n_ctx) * d_model +
         static_cast<double>(c.n_layers) * block + layer_norm +
         d_model * static_cast<double>(c.d_vocab_out) +
         (c.unembed_bias ? static_cast<double>(c.d_vocab_out) : 0);
}

}  // namespace tg::nn
