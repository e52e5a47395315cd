// CPU fused causal attention, forward and backward, for short sequences with the heads as an
// axis: q [B, Tq, H, Dh], k, v [B, T, H, Dh]; query i sits at position T - Tq + i.
//   forward:  S_ij = scale q_i . k_j (j <= T - Tq + i),  P = softmax_j(S),  z_i = sum_j P_ij v_j
//   backward: dP_ij = dz_i . v_j,  dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij')
//             dq_i = scale sum_j dS_ij k_j,  dk_j = scale sum_i dS_ij q_i,  dv_j = sum_i P_ij dz_i
// One thread owns each batch row (all its heads and queries) and visits it in a fixed order, so
// the results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg {

using namespace cpu;

namespace {

struct AttentionDims {
  int64_t batch, queries, keys, heads, head_size;  // B, Tq, T, H, Dh
};

AttentionDims attention_dims(const Tensor& q, const Tensor& k) {
  return {q.size(0), q.size(1), k.size(1), q.size(2), q.size(3)};
}

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

// Offsets of row t, head h of a [B, rows, H, Dh] tensor, and of row i of a [B, H, Tq, T] pattern.
struct Layout {
  AttentionDims n;
  int64_t row(int64_t b, int64_t rows, int64_t t, int64_t h) const {
    return ((b * rows + t) * n.heads + h) * n.head_size;
  }
  int64_t pattern_row(int64_t b, int64_t h, int64_t i) const {
    return ((b * n.heads + h) * n.queries + i) * n.keys;
  }
};

// Forward for batch row b. Not inlined, so that the serial and the OpenMP branches of
// parallel_for run the same machine code (and round the same way).
template <typename T>
TG_ONE_COPY void attention_batch_row(const Layout& at, int64_t b, const T* q, const T* k,
                                     const T* v, T scale, T* z, T* pattern) {
  const AttentionDims& n = at.n;
  for (int64_t h = 0; h < n.heads; ++h) {
    for (int64_t i = 0; i < n.queries; ++i) {
      const int64_t last = n.keys - n.queries + i;  // the last key this query sees
      const T* qi = q + at.row(b, n.queries, i, h);
      T* p = pattern + at.pattern_row(b, h, i);
      for (int64_t j = 0; j <= last; ++j)
        p[j] = scale * dot(qi, k + at.row(b, n.keys, j, h), n.head_size);
      // Subtract the maximum so exp never overflows; the row always keeps key 0.
      const T peak = *std::max_element(p, p + last + 1);
      double total = 0;
      for (int64_t j = 0; j <= last; ++j) total += std::exp(double(p[j] - peak));
      for (int64_t j = 0; j <= last; ++j)
        p[j] = static_cast<T>(std::exp(double(p[j] - peak)) / total);
      std::fill(p + last + 1, p + n.keys, T(0));

      T* zi = z + at.row(b, n.queries, i, h);
      std::fill(zi, zi + n.head_size, T(0));
      for (int64_t j = 0; j <= last; ++j) axpy(p[j], v + at.row(b, n.keys, j, h), zi, n.head_size);
    }
  }
}

// Backward for batch row b: writes row b of dq, dk and dv (dk and dv zeroed first). `ds` is
// this row's scratch of T elements.
template <typename T>
TG_ONE_COPY void attention_backward_batch_row(const Layout& at, int64_t b, const T* dz,
                                              const T* q, const T* k, const T* v,
                                              const T* pattern, T scale, T* ds, T* dq, T* dk,
                                              T* dv) {
  const AttentionDims& n = at.n;
  const int64_t kv_row = n.keys * n.heads * n.head_size;
  std::fill(dk + b * kv_row, dk + (b + 1) * kv_row, T(0));
  std::fill(dv + b * kv_row, dv + (b + 1) * kv_row, T(0));
  for (int64_t h = 0; h < n.heads; ++h) {
    for (int64_t i = 0; i < n.queries; ++i) {
      const int64_t last = n.keys - n.queries + i, qi_at = at.row(b, n.queries, i, h);
      const T* p = pattern + at.pattern_row(b, h, i);
      const T* dzi = dz + qi_at;
      // ds holds dP_ij, then dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij').
      double weighted = 0;
      for (int64_t j = 0; j <= last; ++j) {
        ds[j] = dot(dzi, v + at.row(b, n.keys, j, h), n.head_size);
        weighted += double(p[j]) * ds[j];
      }
      for (int64_t j = 0; j <= last; ++j) ds[j] = static_cast<T>(p[j] * (ds[j] - weighted));

      T* dqi = dq + qi_at;
      std::fill(dqi, dqi + n.head_size, T(0));
      for (int64_t j = 0; j <= last; ++j) {
        const int64_t kj_at = at.row(b, n.keys, j, h);
        axpy(scale * ds[j], k + kj_at, dqi, n.head_size);
        axpy(scale * ds[j], q + qi_at, dk + kj_at, n.head_size);
        axpy(p[j], dzi, dv + kj_at, n.head_size);
      }
    }
  }
}

// Batch rows per thread task: enough work (about H Tq T Dh multiply-adds a row) to wake a thread.
int64_t batch_grain(const AttentionDims& n) {
  const int64_t work = std::max<int64_t>(1, n.heads * n.queries * n.keys * n.head_size);
  return std::max<int64_t>(1, kParallelGrain / work);
}

}  // namespace

void CpuBackend::attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                           double scale, Tensor& z, Tensor& pattern) {
  const Tensor q = contiguous_copy_if_needed(q_in), k = contiguous_copy_if_needed(k_in),
               v = contiguous_copy_if_needed(v_in);
  const AttentionDims n = attention_dims(q, k);
  z = Tensor::empty(q.shape(), q.dtype());
  pattern = Tensor::empty({n.batch, n.heads, n.queries, n.keys}, q.dtype());
  if (pattern.numel() == 0) return;
  dispatch_floating(q.dtype(), "attention", [&]<typename T>() {
    const Layout at{n};
    const T *pq = q.data<T>(), *pk = k.data<T>(), *pv = v.data<T>();
    T *pz = z.data<T>(), *pp = pattern.data<T>();
    const T s = static_cast<T>(scale);
    parallel_for(n.batch, batch_grain(n), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) attention_batch_row<T>(at, b, pq, pk, pv, s, pz, pp);
    });
  });
}

void CpuBackend::attention_backward(const Tensor& dz_in, const Tensor& q_in, const Tensor& k_in,
                                    const Tensor& v_in, const Tensor& pattern_in, double scale,
                                    Tensor& dq, Tensor& dk, Tensor& dv) {
  const Tensor dz = contiguous_copy_if_needed(dz_in), q = contiguous_copy_if_needed(q_in),
               k = contiguous_copy_if_needed(k_in), v = contiguous_copy_if_needed(v_in),
               pattern = contiguous_copy_if_needed(pattern_in);
  const AttentionDims n = attention_dims(q, k);
  dq = Tensor::empty(q.shape(), q.dtype());
  dk = Tensor::empty(k.shape(), k.dtype());
  dv = Tensor::empty(v.shape(), v.dtype());
  if (dk.numel() == 0) return;  // then dq is empty too (same B, H, Dh)
  dispatch_floating(q.dtype(), "attention_backward", [&]<typename T>() {
    const Layout at{n};
    const T *pdz = dz.data<T>(), *pq = q.data<T>(), *pk = k.data<T>(), *pv = v.data<T>(),
            *pp = pattern.data<T>();
    T *pdq = dq.data<T>(), *pdk = dk.data<T>(), *pdv = dv.data<T>();
    const T s = static_cast<T>(scale);
    // Allocated here: nothing may throw inside the parallel region.
    std::vector<T> scratch(static_cast<size_t>(n.batch * n.keys));
    parallel_for(n.batch, batch_grain(n), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        attention_backward_batch_row<T>(at, b, pdz, pq, pk, pv, pp, s,
                                        scratch.data() + b * n.keys, pdq, pdk, pdv);
    });
  });
}

}  // namespace tg
