// PosEmbed: learned positional embedding.
#include "nn/pos_embed.h"

#include <cmath>

#include "core/factories.h"

namespace tg::nn {

PosEmbed::PosEmbed(int64_t n_ctx, int64_t d_model, Generator& gen) {
  check(n_ctx > 0 && d_model > 0, "PosEmbed: n_ctx and d_model must be positive, got ", n_ctx,
        " and ", d_model);
  W_pos_ = register_parameter(
      "W_pos", normal({n_ctx, d_model}, 0, 1 / std::sqrt(static_cast<double>(d_model)), gen));
}

Tensor PosEmbed::forward(const Tensor& tokens) const {
  check(tokens.dim() == 2, "PosEmbed: tokens must be [B, T], got ", shape_str(tokens.shape()));
  const int64_t batch = tokens.size(0), len = tokens.size(1);
  const int64_t n_ctx = W_pos_.size(0), d_model = W_pos_.size(1);
  check(len <= n_ctx, "PosEmbed: tokens ", shape_str(tokens.shape()), ": T exceeds n_ctx ", n_ctx);
  return W_pos_.slice(0, 0, len).unsqueeze(0).expand({batch, len, d_model});
}

}  // namespace tg::nn
