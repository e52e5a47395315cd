// Fused causal attention with the heads as an axis (Backend::attention):
//   z_i = sum_j softmax_j(scale q_i . k_j) v_j  over keys j <= T - Tq + i
// The forward saves q, k, v and the probability pattern [B, H, Tq, T]; backward is one fused
// kernel that returns dq, dk and dv together.
#include "autograd/ops/common.h"

namespace tg {

Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  for (const Tensor* t : {&q, &k, &v}) check_floating("causal_attention", *t);
  check_same_device_and_dtype("causal_attention", q, k);
  check_same_device_and_dtype("causal_attention", q, v);
  check(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "causal_attention: q ", shape_str(q.shape()),
        ", k ", shape_str(k.shape()), " and v ", shape_str(v.shape()),
        ": must all be 4-D [B, T, H, Dh]");
  check(k.shape() == v.shape(), "causal_attention: k ", shape_str(k.shape()), " and v ",
        shape_str(v.shape()), ": shapes differ");
  check(q.size(0) == k.size(0) && q.size(2) == k.size(2) && q.size(3) == k.size(3),
        "causal_attention: q ", shape_str(q.shape()), " and k ", shape_str(k.shape()),
        ": batch, heads and head size (axes 0, 2, 3) differ");
  check(q.size(1) <= k.size(1), "causal_attention: q ", shape_str(q.shape()), " and k ",
        shape_str(k.shape()), ": more queries (", q.size(1), ") than keys (", k.size(1), ")");

  // The primitive wants contiguous inputs; the copies are outside the graph, and the node's
  // edges still point at q, k and v themselves.
  const Tensor qc = contiguous_copy_if_needed(q), kc = contiguous_copy_if_needed(k),
               vc = contiguous_copy_if_needed(v);
  Tensor z, pattern;
  backend_for(q.device()).attention(qc, kc, vc, scale, z, pattern);
  if (!needs_grad({&q, &k, &v})) return z;
  return record(z, "CausalAttentionBackward",
                [q = save(qc), k = save(kc), v = save(vc), pattern = save(pattern),
                 scale](const Tensor& g) -> std::vector<Tensor> {
                  Tensor dq, dk, dv;
                  backend_for(g.device()).attention_backward(contiguous_copy_if_needed(g), q, k,
                                                             v, pattern, scale, dq, dk, dv);
                  return {dq, dk, dv};
                },
                {&q, &k, &v});
}

}  // namespace tg
