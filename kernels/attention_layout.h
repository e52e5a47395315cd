// AttentionLayout: where the fused table attention's operands live (kernels/cpu/attention.cpp and
// kernels/cuda/attention.cu share it): query i / key j of example b, head h, in its table, and
// where row (b, h, i) of the [B, H, Tq, T] pattern and of the softmax statistics starts. The row
// indices are on the backend's device; the methods run on the host (CPU) or in a kernel (CUDA).
#pragma once

#include <cstdint>

#include "core/host_device.h"
#include "core/tensor.h"

namespace tg {

struct AttentionLayout {
  int64_t batch, queries, keys, heads, head_size, value_size;  // B, Tq, T, H, Dh, Dv
  bool sum_heads;          // z is [B, Tq, Dv], summed over the heads
  const int64_t* q_rows;   // [B, Tq]
  const int64_t* kv_rows;  // [B, T]
  TG_HOST_DEVICE int64_t q(int64_t b, int64_t i, int64_t h) const {
    return (q_rows[b * queries + i] * heads + h) * head_size;
  }
  TG_HOST_DEVICE int64_t k(int64_t b, int64_t j, int64_t h) const {
    return (kv_rows[b * keys + j] * heads + h) * head_size;
  }
  TG_HOST_DEVICE int64_t v(int64_t b, int64_t j, int64_t h) const {
    return (kv_rows[b * keys + j] * heads + h) * value_size;
  }
  TG_HOST_DEVICE int64_t z(int64_t b, int64_t i, int64_t h) const {
    return sum_heads ? (b * queries + i) * value_size
                     : ((b * queries + i) * heads + h) * value_size;
  }
  TG_HOST_DEVICE int64_t pattern_row(int64_t b, int64_t h, int64_t i) const {
    return ((b * heads + h) * queries + i) * keys;
  }
  // Where row (b, h, i)'s softmax statistics (maximum, sum) start in [B, H, Tq, 2].
  TG_HOST_DEVICE int64_t stats_row(int64_t b, int64_t h, int64_t i) const {
    return ((b * heads + h) * queries + i) * 2;
  }
  TG_HOST_DEVICE int64_t last_key(int64_t i) const { return keys - queries + i; }
  // The first query that sees key j.
  TG_HOST_DEVICE int64_t first_query(int64_t j) const {
    const int64_t i = j - (keys - queries);
    return i > 0 ? i : 0;
  }
};

// The layout of q_table [rows, H, Dh], v_table [rows, H, Dv] and the row indices q_rows
// [B, Tq], kv_rows [B, T] (contiguous int64, on the tables' device).
inline AttentionLayout attention_layout(const Tensor& q_table, const Tensor& v_table,
                                        const Tensor& q_rows, const Tensor& kv_rows,
                                        bool sum_heads) {
  return {q_rows.size(0),  q_rows.size(1),         kv_rows.size(1),
          q_table.size(1), q_table.size(2),        v_table.size(2),
          sum_heads,       q_rows.data<int64_t>(), kv_rows.data<int64_t>()};
}

}  // namespace tg
