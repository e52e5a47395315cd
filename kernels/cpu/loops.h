// Loop helpers for the CPU kernels: a thread-parallel range loop and a walk over the elements of
// several strided views of one shape (dtype dispatch is in kernels/dispatch.h).
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/tensor.h"
#include "kernels/dispatch.h"  // dispatch, dispatch_floating

// One compiled copy of a function: not inlined, and (GCC) not cloned by constant propagation.
// Kernels whose every element must round the same way whatever the thread count call one such
// function from each branch (a copy inlined into each may contract a * b + c into an FMA in one
// and not in another).
#if defined(__GNUC__) && !defined(__clang__)
#define TG_ONE_COPY __attribute__((noipa))
#else
#define TG_ONE_COPY __attribute__((noinline))
#endif

namespace tg::cpu {

// fn(begin, end) over [0, n), split across the OpenMP threads when n is at least `grain`.
// fn must not throw (exceptions cannot leave an OpenMP region): check inputs before calling.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  if (n < grain || omp_get_max_threads() == 1 || omp_in_parallel()) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads();
    const int64_t chunk = (n + threads - 1) / threads;
    const int64_t begin = std::min(n, chunk * omp_get_thread_num());
    const int64_t end = std::min(n, begin + chunk);
    if (begin < end) fn(begin, end);
  }
}

// Work below this many elements is not worth waking a second thread for.
constexpr int64_t kParallelGrain = 32768;

// Visits every index of `shape` in row-major order for N strided operands. The shape is first
// simplified: size-1 axes dropped and neighbouring axes that are contiguous with each other in
// every operand merged, so contiguous tensors become one long row. Calls
//   row(offsets, length, inner_strides)
// once per row of the innermost axis, where offsets[k] is operand k's element offset of the row's
// first element. Rows run in parallel; large single rows are split into parallel pieces.
template <size_t N, typename Row>
void for_each_row(const Shape& shape, const std::array<Strides, N>& strides, Row&& row) {
  Shape dims;
  std::array<Strides, N> st;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    const bool merge = !dims.empty() && [&] {
      for (size_t k = 0; k < N; ++k)
        if (st[k].back() != strides[k][i] * shape[i]) return false;
      return true;
    }();
    if (merge) {
      dims.back() *= shape[i];
      for (size_t k = 0; k < N; ++k) st[k].back() = strides[k][i];
    } else {
      dims.push_back(shape[i]);
      for (size_t k = 0; k < N; ++k) st[k].push_back(strides[k][i]);
    }
  }
  if (numel(shape) == 0) return;
  if (dims.empty()) {  // a single element
    dims.push_back(1);
    for (size_t k = 0; k < N; ++k) st[k].push_back(0);
  }
  const size_t nd = dims.size();
  const int64_t length = dims.back();
  const int64_t rows = numel(dims) / length;
  std::array<int64_t, N> inner;
  for (size_t k = 0; k < N; ++k) inner[k] = st[k].back();

  // Split each row into `pieces` so that one long row still uses every thread.
  const int64_t pieces = rows == 1 && length >= 2 * kParallelGrain ? omp_get_max_threads() : 1;
  const int64_t piece_len = (length + pieces - 1) / pieces;
  parallel_for(rows * pieces, std::max<int64_t>(1, kParallelGrain / length), [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t r = task / pieces, piece = task % pieces;
      std::array<int64_t, N> offsets{};
      int64_t rest = r;
      for (size_t d = nd - 1; d-- > 0;) {
        const int64_t idx = rest % dims[d];
        rest /= dims[d];
        for (size_t k = 0; k < N; ++k) offsets[k] += idx * st[k][d];
      }
      const int64_t start = piece * piece_len;
      const int64_t len = std::min(length, start + piece_len) - start;
      if (len <= 0) continue;
      for (size_t k = 0; k < N; ++k) offsets[k] += start * inner[k];
      row(offsets, len, inner);
    }
  });
}

}  // namespace tg::cpu
