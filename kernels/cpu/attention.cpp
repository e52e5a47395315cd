// CPU fused causal attention, forward and backward, for short sequences with the heads as an
// axis and q, k, v rows read through index tables (Backend::attention):
//   forward:  S_ij = scale q_i . k_j (j <= T - Tq + i),  P = softmax_j(S),  z_i = sum_j P_ij v_j
//   backward: dP_ij = dz_i . v_j,  dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij')
//             dq_i = scale sum_j dS_ij k_j,  dk_j = scale sum_i dS_ij q_i,  dv_j = sum_i P_ij dz_i
// Values may be wider than queries and keys (Dv), and z may be summed over the heads, and then
// have a residual row added (the residual stream, read through q_rows: no gather of its own).
// The forward keeps each score row's maximum and sum, from which the backward computes the
// probabilities again (the pattern is the caller's only when asked for, for analysis).
// The forward and the first half of the backward (dS) give each batch row to one thread. The
// second half scatter-adds into the tables: for dense inputs (no row shared by two examples)
// still batch row by batch row, but where examples share rows (the first layer's
// (position, token) tables) threads split the heads instead, so that a head's slice of every
// table belongs to one thread, which adds the examples in batch order. Either way the results
// do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention_layout.h"
#include "kernels/attention_outputs.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg {

using namespace cpu;

namespace {

template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t d = 0; d < n; ++d) sum += a[d] * b[d];
  return sum;
}

// y += alpha * x
template <typename T>
void axpy(T alpha, const T* __restrict x, T* __restrict y, int64_t n) {
#pragma omp simd
  for (int64_t d = 0; d < n; ++d) y[d] += alpha * x[d];
}

// Where each operand lives (shared with the other backend's attention).
using Layout = AttentionLayout;

// Row (b, h, i)'s scaled scores into p[0, last].
template <typename T>
void scores(const Layout& at, int64_t b, int64_t h, int64_t i, const T* q, const T* k, T scale,
            T* p) {
  const T* qi = q + at.q(b, i, h);
  for (int64_t j = 0; j <= at.last_key(i); ++j)
    p[j] = scale * dot(qi, k + at.k(b, j, h), at.head_size);
}

// The probabilities in place of the scores p[0, last] from the row's statistics (maximum, sum),
// 0 beyond: the one formula of the forward and of the backward's recomputation.
template <typename T>
void probabilities(const T* stats, int64_t last, int64_t keys, T* p) {
  const T peak = stats[0];
  const double total = stats[1];
  for (int64_t j = 0; j <= last; ++j) p[j] = static_cast<T>(std::exp(double(p[j] - peak)) / total);
  std::fill(p + last + 1, p + keys, T(0));
}

// Forward for batch row b. Not inlined, so that the serial and the OpenMP branches of
// parallel_for run the same machine code (and round the same way). residual: null, or a row per
// q_table row added to the heads' sum. The probabilities go to `pattern` (the caller's, or
// scratch) and the statistics they come from to `stats`.
template <typename T>
TG_ONE_COPY void attention_batch_row(const Layout& at, int64_t b, const T* q, const T* k,
                                     const T* v, const T* residual, T scale, T* z, T* stats,
                                     T* pattern) {
  if (at.sum_heads)  // the heads accumulate into one row per query
    for (int64_t i = 0; i < at.queries; ++i) std::fill_n(z + at.z(b, i, 0), at.value_size, T(0));
  for (int64_t h = 0; h < at.heads; ++h) {
    for (int64_t i = 0; i < at.queries; ++i) {
      const int64_t last = at.last_key(i);
      T* p = pattern + at.pattern_row(b, h, i);
      T* row_stats = stats + at.stats_row(b, h, i);
      scores(at, b, h, i, q, k, scale, p);
      // Subtract the maximum so exp never overflows; the row always keeps key 0. A NaN score
      // counts as -inf in it, as in the CUDA kernels (the row's probabilities are NaN anyway).
      T peak = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j <= last; ++j) peak = p[j] > peak ? p[j] : peak;
      double total = 0;
      for (int64_t j = 0; j <= last; ++j) total += std::exp(double(p[j] - peak));
      row_stats[0] = peak;
      row_stats[1] = static_cast<T>(total);  // rounded first, as the backward will read it
      probabilities(row_stats, last, at.keys, p);

      T* zi = z + at.z(b, i, h);
      if (!at.sum_heads) std::fill_n(zi, at.value_size, T(0));
      for (int64_t j = 0; j <= last; ++j) axpy(p[j], v + at.v(b, j, h), zi, at.value_size);
    }
  }
  if (residual == nullptr) return;
  // Added after the heads' sum, as x + attention(x) adds them.
  for (int64_t i = 0; i < at.queries; ++i) {
    const T* r = residual + at.q_rows[b * at.queries + i] * at.value_size;
    T* zi = z + at.z(b, i, 0);
#pragma omp simd
    for (int64_t e = 0; e < at.value_size; ++e) zi[e] = zi[e] + r[e];
  }
}

// Backward, first half, for batch row b: the pattern again, from the scores and the forward's
// statistics, into `pattern`; then dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij') into `ds` (laid
// out as the pattern).
template <typename T>
TG_ONE_COPY void score_grad_batch_row(const Layout& at, int64_t b, const T* dz, const T* q,
                                      const T* k, const T* v, const T* stats, T scale,
                                      T* pattern, T* ds) {
  for (int64_t h = 0; h < at.heads; ++h) {
    for (int64_t i = 0; i < at.queries; ++i) {
      const int64_t last = at.last_key(i), row = at.pattern_row(b, h, i);
      T* p = pattern + row;
      scores(at, b, h, i, q, k, scale, p);
      probabilities(stats + at.stats_row(b, h, i), last, at.keys, p);
      T* d = ds + row;
      const T* dzi = dz + at.z(b, i, h);
      double weighted = 0;
      for (int64_t j = 0; j <= last; ++j) {
        d[j] = dot(dzi, v + at.v(b, j, h), at.value_size);  // dP_ij
        weighted += double(p[j]) * d[j];
      }
      for (int64_t j = 0; j <= last; ++j) d[j] = static_cast<T>(p[j] * (d[j] - weighted));
      std::fill(d + last + 1, d + at.keys, T(0));
    }
  }
}

// Zeroes head h's slice of the three table gradients.
template <typename T>
void zero_head(const Layout& at, int64_t h, int64_t q_table_rows, int64_t kv_table_rows, T* dq,
               T* dk, T* dv) {
  const int64_t dh = at.head_size, dvs = at.value_size;
  for (int64_t r = 0; r < q_table_rows; ++r) std::fill_n(dq + (r * at.heads + h) * dh, dh, T(0));
  for (int64_t r = 0; r < kv_table_rows; ++r) {
    std::fill_n(dk + (r * at.heads + h) * dh, dh, T(0));
    std::fill_n(dv + (r * at.heads + h) * dvs, dvs, T(0));
  }
}

// Backward, second half, for head h and batch rows [b0, b1): scatter-adds each example's
// contributions into head h's slice of the three table gradients, in batch order.
template <typename T>
TG_ONE_COPY void table_grad(const Layout& at, int64_t h, int64_t b0, int64_t b1, const T* dz,
                            const T* q, const T* k, const T* pattern, const T* ds, T scale, T* dq,
                            T* dk, T* dv) {
  const int64_t dh = at.head_size, dvs = at.value_size;
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t i = 0; i < at.queries; ++i) {
      const int64_t last = at.last_key(i), row = at.pattern_row(b, h, i), qi = at.q(b, i, h);
      const T* dzi = dz + at.z(b, i, h);
      for (int64_t j = 0; j <= last; ++j) {
        const int64_t kj = at.k(b, j, h);
        axpy(scale * ds[row + j], k + kj, dq + qi, dh);
        axpy(scale * ds[row + j], q + qi, dk + kj, dh);
        axpy(pattern[row + j], dzi, dv + at.v(b, j, h), dvs);
      }
    }
  }
}

// Whether no row index repeats (dense q, k, v viewed as tables); rows are in [0, table_rows).
bool rows_distinct(const Tensor& rows, int64_t table_rows) {
  std::vector<bool> seen(static_cast<size_t>(table_rows), false);
  const int64_t* r = rows.data<int64_t>();
  for (int64_t n = 0; n < rows.numel(); ++n) {
    if (seen[static_cast<size_t>(r[n])]) return false;
    seen[static_cast<size_t>(r[n])] = true;
  }
  return true;
}

// Batch rows per thread task: enough work (about H Tq T Dh multiply-adds a row) to wake a thread.
int64_t batch_grain(const Layout& at) {
  const int64_t work = std::max<int64_t>(1, at.heads * at.queries * at.keys * at.head_size);
  return std::max<int64_t>(1, kParallelGrain / work);
}

void check_rows(const char* op, const Tensor& rows, int64_t table_rows, const char* which) {
  const int64_t* r = rows.data<int64_t>();
  for (int64_t n = 0; n < rows.numel(); ++n)
    check(r[n] >= 0 && r[n] < table_rows, op, ": ", which, " ", r[n], " at position ", n,
          " is outside the table's ", table_rows, " rows");
}

}  // namespace

void CpuBackend::attention(const Tensor& q_table_in, const Tensor& k_table_in,
                           const Tensor& v_table_in, const Tensor& q_rows_in,
                           const Tensor& kv_rows_in, double scale, bool sum_heads,
                           const Tensor& residual_in, Tensor& z, Tensor& softmax_stats,
                           Tensor* pattern) {
  const Tensor q = contiguous_copy_if_needed(q_table_in), k = contiguous_copy_if_needed(k_table_in),
               v = contiguous_copy_if_needed(v_table_in);
  const Tensor residual =
      residual_in.defined() ? contiguous_copy_if_needed(residual_in) : Tensor();
  const Tensor q_rows = contiguous_copy_if_needed(q_rows_in),
               kv_rows = contiguous_copy_if_needed(kv_rows_in);
  check_rows("attention", q_rows, q.size(0), "query row");
  check_rows("attention", kv_rows, k.size(0), "key row");
  const Layout at = attention_layout(q, v, q_rows, kv_rows, sum_heads);
  check_attention_residual("attention", residual, q, at);
  if (!make_attention_outputs(*this, at, q.dtype(), residual, q_rows, z, softmax_stats, pattern))
    return;
  dispatch_floating(q.dtype(), "attention", [&]<typename T>() {
    const T *pq = q.data<T>(), *pk = k.data<T>(), *pv = v.data<T>();
    const T* pr = residual.defined() ? residual.data<T>() : nullptr;
    T *pz = z.data<T>(), *ps = softmax_stats.data<T>();
    // Unasked-for probabilities go to scratch, allocated here: nothing may throw inside a
    // parallel region.
    std::vector<T> scratch;
    if (pattern == nullptr)
      scratch.resize(static_cast<size_t>(at.batch * at.heads * at.queries * at.keys));
    T* pp = pattern != nullptr ? pattern->data<T>() : scratch.data();
    const T s = static_cast<T>(scale);
    parallel_for(at.batch, batch_grain(at), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        attention_batch_row<T>(at, b, pq, pk, pv, pr, s, pz, ps, pp);
    });
  });
}

void CpuBackend::attention_backward(const Tensor& dz_in, const Tensor& q_table_in,
                                    const Tensor& k_table_in, const Tensor& v_table_in,
                                    const Tensor& q_rows_in, const Tensor& kv_rows_in,
                                    const Tensor& stats_in, double scale, bool sum_heads,
                                    const Tensor& residual, Tensor& dq, Tensor& dk, Tensor& dv,
                                    Tensor& dresidual) {
  const Tensor dz = contiguous_copy_if_needed(dz_in), q = contiguous_copy_if_needed(q_table_in),
               k = contiguous_copy_if_needed(k_table_in), v = contiguous_copy_if_needed(v_table_in),
               stats = contiguous_copy_if_needed(stats_in);
  const Tensor q_rows = contiguous_copy_if_needed(q_rows_in),
               kv_rows = contiguous_copy_if_needed(kv_rows_in);
  check_rows("attention_backward", q_rows, q.size(0), "query row");
  check_rows("attention_backward", kv_rows, k.size(0), "key row");
  const Layout at = attention_layout(q, v, q_rows, kv_rows, sum_heads);
  check_softmax_stats("attention_backward", stats, at, q.dtype());
  check_attention_residual("attention_backward", residual, q, at);
  dq = Tensor::empty(q.shape(), q.dtype());
  dk = Tensor::empty(k.shape(), k.dtype());
  dv = Tensor::empty(v.shape(), v.dtype());
  // The residual's rows were gathered through q_rows: their gradient is dz scattered back.
  if (residual.defined()) dresidual = index_add(dz, q_rows, residual.size(0));
  dispatch_floating(q.dtype(), "attention_backward", [&]<typename T>() {
    const T *pdz = dz.data<T>(), *pq = q.data<T>(), *pk = k.data<T>(), *pv = v.data<T>(),
            *pst = stats.data<T>();
    T *pdq = dq.data<T>(), *pdk = dk.data<T>(), *pdv = dv.data<T>();
    const T s = static_cast<T>(scale);
    // Allocated here: nothing may throw inside a parallel region.
    const auto pattern_size = static_cast<size_t>(at.batch * at.heads * at.queries * at.keys);
    std::vector<T> pattern(pattern_size), ds(pattern_size);
    T* pp = pattern.data();
    parallel_for(at.batch, batch_grain(at), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        score_grad_batch_row<T>(at, b, pdz, pq, pk, pv, pst, s, pp, ds.data());
    });
    if (rows_distinct(q_rows, q.size(0)) && rows_distinct(kv_rows, k.size(0))) {
      // Dense q, k, v (one table row per example and position): no two examples share a row,
      // so each batch row's thread adds its own contributions, all heads at once.
      for (Tensor* t : {&dq, &dk, &dv}) fill(*t, 0);
      parallel_for(at.batch, batch_grain(at), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b)
          for (int64_t h = 0; h < at.heads; ++h)
            table_grad<T>(at, h, b, b + 1, pdz, pq, pk, pp, ds.data(), s, pdq, pdk, pdv);
      });
    } else {
      // Shared rows: split the heads, so that each table slice has one writer, which adds the
      // examples in batch order.
      parallel_for(at.heads, 1, [&](int64_t h0, int64_t h1) {
        for (int64_t h = h0; h < h1; ++h) {
          zero_head(at, h, q.size(0), k.size(0), pdq, pdk, pdv);
          table_grad<T>(at, h, 0, at.batch, pdz, pq, pk, pp, ds.data(), s, pdq, pdk, pdv);
        }
      });
    }
  });
}

}  // namespace tg
