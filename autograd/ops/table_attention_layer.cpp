// table_attention_layer: an attention layer over a table of rows as one recorded op.
//
// The first layer of a transformer on a few positions attends over rows of the embedding table
// (nn/attention.cpp's forward_table). Composed of head_matmul and table_attention, its graph
// has the three projections of the same table rows as three nodes whose input gradients
// autograd adds one at a time ([R, H, d_model] each, then summed over the heads, then added to
// the residual's), and three weight gradients computed apart. As one op it can hand the
// backend whole groups (Backend::matmul_into_grouped, matmul_sum), which a GPU runs as one
// launch each:
//   forward   q, k, v = table @ W_Q[h], W_K[h], W_V[h]        one grouped product
//             vo = v @ W_O[h]                                  per head, [R, H, d_out]
//             z = table_attention(q, k, vo, sum_heads) (+ residual[q_rows])
//   backward  dq, dk, dvo, dres = attention_backward(dz)
//             dv = dvo @ W_O[h]^T,  dW_O[h] = v[:, h]^T @ dvo[:, h]
//             dW_Q, dW_K, dW_V [h] = table^T @ dq, dk, dv [:, h]      one grouped product
//             dtable = sum over (Q, K, V) and heads of d*[:, h] @ W_*[h]^T        one sum
//                      (+ dres in the same sum when the residual is the table itself)
// The arithmetic is the composition's: the same products, the gradients added in the order
// autograd adds them (tests/test_attention_op.cpp compares the two bit for bit on the CPU).
#include "autograd/ops/common.h"

namespace tg {

namespace {

// [R, d] as [H, R, d]: the same rows for every head (stride 0).
Tensor rows_for_heads(const Tensor& table, int64_t heads) {
  return table.unsqueeze(0).expand({heads, table.size(0), table.size(1)});
}

// [R, H, e] as [H, R, e]: the heads as the batch of a product, in place.
Tensor heads_first(const Tensor& t) { return t.permute({1, 0, 2}); }

}  // namespace

Tensor table_attention_layer(const Tensor& table, const Tensor& W_Q, const Tensor& W_K,
                             const Tensor& W_V, const Tensor& W_O, const Tensor& q_rows,
                             const Tensor& kv_rows, double scale, const Tensor& residual_in,
                             Tensor* pattern) {
  check_floating("table_attention_layer", table);
  for (const Tensor* W : {&W_Q, &W_K, &W_V, &W_O})
    check_same_device_and_dtype("table_attention_layer", table, *W);
  check(table.dim() == 2, "table_attention_layer: table ", shape_str(table.shape()),
        " must be [rows, d_model]");
  check(W_Q.dim() == 3 && W_Q.size(1) == table.size(1) && W_K.shape() == W_Q.shape() &&
            W_V.shape() == W_Q.shape(),
        "table_attention_layer: W_Q ", shape_str(W_Q.shape()), ", W_K ", shape_str(W_K.shape()),
        " and W_V ", shape_str(W_V.shape()), " must all be [H, d_model = ", table.size(1),
        ", d_head]");
  check(W_O.dim() == 3 && W_O.size(0) == W_Q.size(0) && W_O.size(1) == W_Q.size(2),
        "table_attention_layer: W_O ", shape_str(W_O.shape()), " must be [H = ", W_Q.size(0),
        ", d_head = ", W_Q.size(2), ", d_out]");
  if (residual_in.defined()) {
    check_same_device_and_dtype("table_attention_layer", table, residual_in);
    check(residual_in.dim() == 2 && residual_in.size(0) == table.size(0) &&
              residual_in.size(1) == W_O.size(2),
          "table_attention_layer: residual ", shape_str(residual_in.shape()), " must be [",
          table.size(0), ", ", W_O.size(2), "]: a row of W_O's width per table row");
  }
  check_attention_rows("table_attention_layer", q_rows, kv_rows, table.device());
  const int64_t rows = table.size(0), heads = W_Q.size(0), d_head = W_Q.size(2);
  const int64_t d_out = W_O.size(2);
  Backend& backend = backend_for(table.device());

  const Tensor x = contiguous_copy_if_needed(table.detach());
  // The residual stream is often the table itself (a block without LayerNorm): its gradient then
  // joins the table's in one sum, where autograd would add the two.
  const bool residual_is_table =
      residual_in.defined() && residual_in.impl_ptr() == table.impl_ptr();
  const Tensor residual = residual_is_table ? x : save(residual_in);
  Tensor q = Tensor::empty({rows, heads, d_head}, x.dtype(), x.device());
  Tensor k = Tensor::empty({rows, heads, d_head}, x.dtype(), x.device());
  Tensor v = Tensor::empty({rows, heads, d_head}, x.dtype(), x.device());
  const Tensor x_heads = rows_for_heads(x, heads);  // [H, R, d_model]
  backend.matmul_into_grouped({x_heads, x_heads, x_heads},
                              {W_Q.detach(), W_K.detach(), W_V.detach()},
                              {heads_first(q), heads_first(k), heads_first(v)});
  Tensor vo = Tensor::empty({rows, heads, d_out}, x.dtype(), x.device());
  backend.matmul_into(heads_first(v), W_O.detach(), heads_first(vo));
  Tensor z, softmax_stats;
  backend.attention(q, k, vo, q_rows, kv_rows, scale, /*sum_heads=*/true, residual, z,
                    softmax_stats, pattern);
  if (!needs_grad({&table, &W_Q, &W_K, &W_V, &W_O, &residual_in})) return z;

  return record(
      z, "TableAttentionLayerBackward",
      [x = save(x), W_Q = save(W_Q), W_K = save(W_K), W_V = save(W_V), W_O = save(W_O), q, k, v,
       vo, q_rows = save(q_rows), kv_rows = save(kv_rows), softmax_stats, scale, residual,
       residual_is_table, need_table = table.requires_grad(),
       need_qkv = W_Q.requires_grad() || W_K.requires_grad() || W_V.requires_grad(),
       need_o = W_O.requires_grad()](const Tensor& g) -> std::vector<Tensor> {
        Backend& backend = backend_for(g.device());
        Tensor dq, dk, dvo, dres;
        backend.attention_backward(contiguous_copy_if_needed(g), q, k, vo, q_rows, kv_rows,
                                   softmax_stats, scale, /*sum_heads=*/true, residual, dq, dk,
                                   dvo, dres);
        Tensor dW_O, dW_Q, dW_K, dW_V, dtable;
        if (need_o) dW_O = backend.matmul(v.permute({1, 2, 0}), heads_first(dvo));
        const Tensor dresidual = residual_is_table ? Tensor() : dres;
        if (!need_qkv && !need_table) return {dtable, dW_Q, dW_K, dW_V, dW_O, dresidual};
        Tensor dv = Tensor::empty(v.shape(), v.dtype(), v.device());
        backend.matmul_into(heads_first(dvo), W_O.transpose(1, 2), heads_first(dv));
        if (need_qkv) {
          dW_Q = Tensor::empty(W_Q.shape(), W_Q.dtype(), W_Q.device());
          dW_K = Tensor::empty(W_K.shape(), W_K.dtype(), W_K.device());
          dW_V = Tensor::empty(W_V.shape(), W_V.dtype(), W_V.device());
          const Tensor x_t = rows_for_heads(x, W_Q.size(0)).transpose(1, 2);  // [H, d, R]
          backend.matmul_into_grouped({x_t, x_t, x_t},
                                      {heads_first(dq), heads_first(dk), heads_first(dv)},
                                      {dW_Q, dW_K, dW_V});
        }
        // In the order autograd added the composition's three input gradients.
        if (need_table)
          dtable = backend.matmul_sum({heads_first(dv), heads_first(dk), heads_first(dq)},
                                      {W_V.transpose(1, 2), W_K.transpose(1, 2),
                                       W_Q.transpose(1, 2)},
                                      residual_is_table ? dres : Tensor());
        return {dtable, dW_Q, dW_K, dW_V, dW_O, dresidual};
      },
      {&table, &W_Q, &W_K, &W_V, &W_O, &residual_in});
}

}  // namespace tg
