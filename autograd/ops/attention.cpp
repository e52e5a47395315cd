// Fused causal attention with the heads as an axis (Backend::attention):
//   z_i = sum_j softmax_j(scale q_i . k_j) v_j  over keys j <= T - Tq + i
// table_attention reads q, k and v rows through index tables and scatter-adds its gradients
// back into the tables; causal_attention is the same kernel on dense tensors, viewed as tables
// with one row per (example, position). The forward saves each score row's softmax maximum and
// sum ([B, H, Tq, 2]), not the probabilities: backward is one fused kernel that computes them
// again and returns the three gradients together. The pattern [B, H, Tq, T] comes out only
// when asked for, for analysis, and is not differentiable. A
// residual table's rows, added to a head-summed output, come with it: the residual stream's
// gather, add and (backward) scatter-add cost no launch of their own.
#include "autograd/ops/common.h"
#include "core/factories.h"

namespace tg {

void check_attention_rows(const char* op, const Tensor& q_rows, const Tensor& kv_rows,
                          Device device) {
  for (const Tensor* rows : {&q_rows, &kv_rows})
    check(rows->dtype() == DType::Int64 && rows->dim() == 2 && rows->device() == device, op,
          ": row indices must be int64 [B, T] on ", device.str(), ", got ",
          dtype_name(rows->dtype()), " ", shape_str(rows->shape()));
  check(q_rows.size(0) == kv_rows.size(0) && q_rows.size(1) <= kv_rows.size(1), op, ": q_rows ",
        shape_str(q_rows.shape()), " and kv_rows ", shape_str(kv_rows.shape()),
        ": batch sizes differ or more queries than keys");
}

Tensor table_attention(const Tensor& q_table, const Tensor& k_table, const Tensor& v_table,
                       const Tensor& q_rows, const Tensor& kv_rows, double scale, bool sum_heads,
                       const Tensor& residual, Tensor* pattern) {
  for (const Tensor* t : {&q_table, &k_table, &v_table}) check_floating("table_attention", *t);
  check_same_device_and_dtype("table_attention", q_table, k_table);
  check_same_device_and_dtype("table_attention", q_table, v_table);
  check(q_table.dim() == 3 && k_table.dim() == 3 && v_table.dim() == 3, "table_attention: q_table ",
        shape_str(q_table.shape()), ", k_table ", shape_str(k_table.shape()), " and v_table ",
        shape_str(v_table.shape()), ": must all be 3-D [rows, H, Dh]");
  check(k_table.size(0) == v_table.size(0) && k_table.size(1) == v_table.size(1),
        "table_attention: k_table ", shape_str(k_table.shape()), " and v_table ",
        shape_str(v_table.shape()), ": rows or heads (axes 0, 1) differ");
  check(q_table.size(1) == k_table.size(1) && q_table.size(2) == k_table.size(2),
        "table_attention: q_table ", shape_str(q_table.shape()), " and k_table ",
        shape_str(k_table.shape()), ": heads and head size (axes 1, 2) differ");
  check_attention_rows("table_attention", q_rows, kv_rows, q_table.device());
  if (residual.defined()) {
    check_same_device_and_dtype("table_attention", q_table, residual);
    check(sum_heads, "table_attention: a residual needs sum_heads (an output [B, Tq, Dv])");
    check(residual.dim() == 2 && residual.size(0) == q_table.size(0) &&
              residual.size(1) == v_table.size(2),
          "table_attention: residual ", shape_str(residual.shape()), " must be [",
          q_table.size(0), ", ", v_table.size(2), "]: a row of the values' width per q_table row");
  }

  // The primitive wants contiguous tables; the copies are outside the graph, and the node's
  // edges still point at the tables themselves.
  const Tensor q = contiguous_copy_if_needed(q_table), k = contiguous_copy_if_needed(k_table),
               v = contiguous_copy_if_needed(v_table);
  Tensor z, softmax_stats;
  backend_for(q.device())
      .attention(q, k, v, q_rows, kv_rows, scale, sum_heads, residual, z, softmax_stats, pattern);
  if (!needs_grad({&q_table, &k_table, &v_table, &residual})) return z;
  return record(
      z, "AttentionBackward",
      [q = save(q), k = save(k), v = save(v), q_rows = save(q_rows), kv_rows = save(kv_rows),
       softmax_stats, scale, sum_heads,
       residual = save(residual)](const Tensor& g) -> std::vector<Tensor> {
        Tensor dq, dk, dv, dresidual;
        backend_for(g.device())
            .attention_backward(contiguous_copy_if_needed(g), q, k, v, q_rows, kv_rows,
                                softmax_stats, scale, sum_heads, residual, dq, dk, dv,
                                dresidual);
        return {dq, dk, dv, dresidual};
      },
      {&q_table, &k_table, &v_table, &residual});
}

Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                        Tensor* pattern) {
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
  const int64_t batch = q.size(0), queries = q.size(1), keys = k.size(1);
  const int64_t heads = q.size(2), head_size = q.size(3);
  // One table row per (example, position): row b * T + t, made on q's device.
  const auto rows = [&](int64_t n) {
    return arange(0, static_cast<double>(n), 1, DType::Int64, q.device());
  };
  const Tensor q_rows = rows(batch * queries).reshape({batch, queries});
  const Tensor kv_rows = rows(batch * keys).reshape({batch, keys});
  return table_attention(q.reshape({batch * queries, heads, head_size}),
                         k.reshape({batch * keys, heads, head_size}),
                         v.reshape({batch * keys, heads, head_size}), q_rows, kv_rows, scale,
                         /*sum_heads=*/false, Tensor(), pattern);
}

}  // namespace tg
