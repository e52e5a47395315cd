// TransformerConfig: LayerNormMode names.
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

}  // namespace tg::nn
