// Embed: token embedding lookup.
#include "nn/embed.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/factories.h"

namespace tg::nn {

Embed::Embed(int64_t d_vocab, int64_t d_model, Generator& gen) {
  check(d_vocab > 0 && d_model > 0, "Embed: d_vocab and d_model must be positive, got ", d_vocab,
        " and ", d_model);
  W_E_ = register_parameter(
      "W_E", normal({d_vocab, d_model}, 0, 1 / std::sqrt(static_cast<double>(d_model)), gen));
}

Tensor Embed::forward(const Tensor& tokens) const { return embedding(W_E_, tokens); }

}  // namespace tg::nn
