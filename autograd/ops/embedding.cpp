// Token plus position embeddings as one op: out[b, t] = W_E[tokens[b, t]] + W_pos[t], with one
// backward that scatter-adds into W_E and sums over the batch into W_pos (Backend::
// embed_with_positions and its backward; on a GPU each is one deterministic pass).
#include "autograd/ops/common.h"

namespace tg {

Tensor embed_positions(const Tensor& W_E, const Tensor& W_pos, const Tensor& tokens) {
  check_floating("embed_positions", W_E);
  check_same_device_and_dtype("embed_positions", W_E, W_pos);
  check(W_E.dim() == 2 && W_pos.dim() == 2 && W_E.size(1) == W_pos.size(1),
        "embed_positions: W_E ", shape_str(W_E.shape()), " and W_pos ", shape_str(W_pos.shape()),
        " must be [V, D] and [P, D]");
  check(tokens.dtype() == DType::Int64, "embed_positions: tokens must be int64, got ",
        dtype_name(tokens.dtype()), " of shape ", shape_str(tokens.shape()));
  check(tokens.dim() == 2 && tokens.size(1) <= W_pos.size(0), "embed_positions: tokens ",
        shape_str(tokens.shape()), " must be [B, T] with T <= ", W_pos.size(0), " positions");
  check(tokens.device() == W_E.device(), "embed_positions: tables on ", W_E.device().str(),
        ", tokens on ", tokens.device().str());
  Tensor out = backend_for(W_E.device()).embed_with_positions(W_E, W_pos, tokens);
  if (!needs_grad({&W_E, &W_pos})) return out;
  return record(out, "EmbedPositionsBackward",
                [tokens = save(tokens), vocab = W_E.size(0),
                 n_pos = W_pos.size(0)](const Tensor& g) -> std::vector<Tensor> {
                  Tensor dW_E, dW_pos;
                  backend_for(g.device()).embed_with_positions_backward(g, tokens, vocab, n_pos,
                                                                        dW_E, dW_pos);
                  return {dW_E, dW_pos};
                },
                {&W_E, &W_pos});
}

}  // namespace tg
