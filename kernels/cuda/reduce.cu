// CUDA reductions (the CUDA twin of kernels/cpu/reduce.cpp): sum, mean and max over any sorted
// set of axes, and argmax along one axis, on strided inputs.
//
// One warp per output element. The output's elements are the row-major order of x's kept axes
// (an outer StridedIndexer gives each one's base offset in x); its reduced elements are the
// row-major order j of x's reduced axes (an inner StridedIndexer). Lane l takes j = l, l + 32, ...
// in increasing order, then a fixed shuffle tree combines the 32 lanes into lane 0, which writes
// the output. Nothing depends on the launch geometry or on timing, so every run gives the same
// bits. As on the CPU, float sums accumulate in double (int64 in int64); max and argmax follow the
// CPU's NaN rules: a NaN is the max of anything, and argmax gives the first NaN, else the first
// maximum.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/wrapping.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/strided_indexer.h"
#include "kernels/dispatch.h"

namespace tg::cuda {

namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// Where x's elements lie: the base offset of each output element (over the kept axes) and the
// offset of each reduced element from it (over the reduced axes, in the listed order).
struct ReduceLayout {
  int64_t outer = 1, length = 1;
  StridedIndexer<1> outer_ix, inner_ix;
};

ReduceLayout layout_for(const Tensor& x, const std::vector<int>& axes, const char* op) {
  Shape outer_shape, inner_shape;
  Strides outer_strides, inner_strides;
  for (int d = 0; d < static_cast<int>(x.dim()); ++d) {
    if (std::find(axes.begin(), axes.end(), d) != axes.end()) continue;
    outer_shape.push_back(x.shape()[d]);
    outer_strides.push_back(x.strides()[d]);
  }
  for (int a : axes) {
    inner_shape.push_back(x.shape()[a]);
    inner_strides.push_back(x.strides()[a]);
  }
  ReduceLayout layout;
  layout.outer = numel(outer_shape);
  layout.length = numel(inner_shape);
  layout.outer_ix = make_indexer<1>(outer_shape, {outer_strides}, op);
  layout.inner_ix = make_indexer<1>(inner_shape, {inner_strides}, op);
  return layout;
}

Shape kept_shape(const Tensor& x, const std::vector<int>& axes) {
  Shape out = x.shape();
  for (int a : axes) out[a] = 1;
  return out;
}

void check_axes(const Tensor& x, const std::vector<int>& axes, const char* op) {
  for (size_t i = 0; i < axes.size(); ++i) {
    check(axes[i] >= 0 && axes[i] < x.dim(), op, ": axis ", axes[i], " is out of range for ",
          shape_str(x.shape()));
    check(i == 0 || axes[i - 1] < axes[i], op, ": axes must be sorted and unique");
  }
}

// Is v a NaN? (Never for integers.)
template <typename T>
__device__ inline bool is_nan(T v) {
  return v != v;
}

// The lowest value of T, the identity of max: -inf for floats.
template <typename T>
__device__ inline T lowest() {
  if constexpr (std::is_floating_point_v<T>) return static_cast<T>(-HUGE_VAL);
  else return static_cast<T>(-9223372036854775807LL - 1);
}

// The max of two values; a NaN wins (the first of two NaNs).
template <typename T>
__device__ inline T max_of(T best, T v) {
  if (is_nan(best)) return best;
  return (v > best || is_nan(v)) ? v : best;
}

// The better of two (value, index) candidates: a NaN beats any number, a larger value beats a
// smaller one, and between equals (or two NaNs) the smaller index wins. Index -1 is no candidate.
template <typename T>
__device__ inline void argmax_combine(T& best, int64_t& best_i, T v, int64_t i) {
  if (i < 0) return;
  bool take;
  if (best_i < 0) {
    take = true;
  } else if (is_nan(best) || is_nan(v)) {
    take = is_nan(v) && (!is_nan(best) || i < best_i);
  } else {
    take = v > best || (v == best && i < best_i);
  }
  if (take) {
    best = v;
    best_i = i;
  }
}

// Each warp visits its output elements o; all lanes of a warp see the same o, so the shuffles
// below always have the full warp.
#define TG_FOR_EACH_WARP_OUTPUT(o, outer)                                                    \
  const int lane = static_cast<int>(threadIdx.x) % kWarp;                                    \
  for (int64_t o = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;    \
       o < (outer); o += static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp)

// One sum reduction of x: its output, and where its elements lie (ReduceLayout).
template <typename T>
struct SumJob {
  T* out;
  int64_t outer, length;
  StridedIndexer<1> outer_ix, inner_ix;
};

// Output element o of a sum job, by the whole warp.
template <typename T, typename Acc>
__device__ __forceinline__ void sum_output(const T* x, const SumJob<T>& job, int64_t o, bool mean,
                                           int lane) {
  int64_t base[1], off[1];
  job.outer_ix.offsets(o, base);
  Acc total = 0;
  for (int64_t j = lane; j < job.length; j += kWarp) {
    job.inner_ix.offsets(j, off);
    total = wrapping_add(total, static_cast<Acc>(x[base[0] + off[0]]));
  }
  for (int step = kWarp / 2; step > 0; step /= 2)
    total = wrapping_add(total, __shfl_down_sync(kFullMask, total, step));
  if (lane == 0) {
    const T sum = static_cast<T>(total);
    job.out[o] = mean ? static_cast<T>(static_cast<double>(sum) *
                                       (1.0 / static_cast<double>(job.length)))
                      : sum;
  }
}

// The sum or, with `mean`, the mean (ReduceOp::Mean: the sum rounded to T, then scaled in
// double, as kernels/cpu/reduce.cpp does). With kPair, a second sum of x follows the first one's
// outputs in the same launch (reduce_sum_pair); each output is computed as alone.
template <typename T, typename Acc, bool kPair>
__global__ void sum_kernel(const T* x, SumJob<T> first, SumJob<T> second, bool mean) {
  kernel_prologue();
  TG_FOR_EACH_WARP_OUTPUT(o, kPair ? first.outer + second.outer : first.outer) {
    if (!kPair || o < first.outer) sum_output<T, Acc>(x, first, o, mean, lane);
    else sum_output<T, Acc>(x, second, o - first.outer, mean, lane);
  }
}

template <typename T>
__global__ void max_kernel(const T* x, T* out, int64_t outer, int64_t length,
                           StridedIndexer<1> outer_ix, StridedIndexer<1> inner_ix) {
  kernel_prologue();
  TG_FOR_EACH_WARP_OUTPUT(o, outer) {
    int64_t base[1], off[1];
    outer_ix.offsets(o, base);
    T best = lowest<T>();
    for (int64_t j = lane; j < length; j += kWarp) {
      inner_ix.offsets(j, off);
      best = max_of(best, x[base[0] + off[0]]);
    }
    for (int step = kWarp / 2; step > 0; step /= 2)
      best = max_of(best, __shfl_down_sync(kFullMask, best, step));
    if (lane == 0) out[o] = best;
  }
}

template <typename T>
__global__ void argmax_kernel(const T* x, int64_t* out, int64_t outer, int64_t length,
                              StridedIndexer<1> outer_ix, StridedIndexer<1> inner_ix) {
  kernel_prologue();
  TG_FOR_EACH_WARP_OUTPUT(o, outer) {
    int64_t base[1], off[1];
    outer_ix.offsets(o, base);
    T best = T(0);
    int64_t best_i = -1;
    for (int64_t j = lane; j < length; j += kWarp) {
      inner_ix.offsets(j, off);
      argmax_combine(best, best_i, x[base[0] + off[0]], j);
    }
    for (int step = kWarp / 2; step > 0; step /= 2) {
      const T v = __shfl_down_sync(kFullMask, best, step);
      const int64_t i = __shfl_down_sync(kFullMask, best_i, step);
      argmax_combine(best, best_i, v, i);
    }
    if (lane == 0) out[o] = best_i;
  }
}

#undef TG_FOR_EACH_WARP_OUTPUT

// Threads for one warp per output element (grid_for caps the grid; the loop covers the rest).
unsigned grid_for_warps(int64_t outer) { return grid_for(outer * kWarp); }

template <typename T>
SumJob<T> sum_job(const Tensor& out, const ReduceLayout& layout) {
  return {out.data<T>(), layout.outer, layout.length, layout.outer_ix, layout.inner_ix};
}

}  // namespace

Tensor CudaBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) {
  check_on(x, device(), "reduce", "input");
  check_axes(x, axes, "reduce");
  Tensor out = Tensor::empty(kept_shape(x, axes), x.dtype(), device());
  const ReduceLayout layout = layout_for(x, axes, "reduce");
  if (layout.length == 0) {  // no elements: the sum is 0 (the ops reject an empty mean or max)
    fill(out, 0);
    return out;
  }
  if (layout.outer == 0) return out;
  DeviceGuard guard(index_);
  cudaStream_t stream = current_stream(index_);
  const unsigned grid = grid_for_warps(layout.outer);
  dispatch(x.dtype(), [&]<typename T>() {
    if (op != ReduceOp::Max) {
      using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
      launch(sum_kernel<T, Acc, false>, grid, kBlockThreads, stream, x.data<T>(),
             sum_job<T>(out, layout), SumJob<T>{}, op == ReduceOp::Mean);
    } else {
      launch(max_kernel<T>, grid, kBlockThreads, stream, x.data<T>(), out.data<T>(), layout.outer,
             layout.length, layout.outer_ix, layout.inner_ix);
    }
  });
  return out;
}

std::pair<Tensor, Tensor> CudaBackend::reduce_sum_pair(const Tensor& x,
                                                       const std::vector<int>& axes_a,
                                                       const std::vector<int>& axes_b) {
  check_on(x, device(), "reduce", "input");
  check_axes(x, axes_a, "reduce");
  check_axes(x, axes_b, "reduce");
  const ReduceLayout a = layout_for(x, axes_a, "reduce"), b = layout_for(x, axes_b, "reduce");
  if (a.length == 0 || b.length == 0 || a.outer == 0 || b.outer == 0)  // as reduce makes them
    return Backend::reduce_sum_pair(x, axes_a, axes_b);
  std::pair<Tensor, Tensor> out{Tensor::empty(kept_shape(x, axes_a), x.dtype(), device()),
                                Tensor::empty(kept_shape(x, axes_b), x.dtype(), device())};
  DeviceGuard guard(index_);
  dispatch(x.dtype(), [&]<typename T>() {
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
    launch(sum_kernel<T, Acc, true>, grid_for_warps(a.outer + b.outer), kBlockThreads,
           current_stream(index_), x.data<T>(), sum_job<T>(out.first, a),
           sum_job<T>(out.second, b), false);
  });
  return out;
}

Tensor CudaBackend::argmax(const Tensor& x, int axis) {
  check_on(x, device(), "argmax", "input");
  check_axes(x, {axis}, "argmax");
  check(x.shape()[axis] > 0, "argmax: ", shape_str(x.shape()), ": axis ", axis, " is empty");
  Tensor out = Tensor::empty(kept_shape(x, {axis}), DType::Int64, device());
  const ReduceLayout layout = layout_for(x, {axis}, "argmax");
  if (layout.outer == 0) return out;
  DeviceGuard guard(index_);
  cudaStream_t stream = current_stream(index_);
  dispatch(x.dtype(), [&]<typename T>() {
    launch(argmax_kernel<T>, grid_for_warps(layout.outer), kBlockThreads, stream, x.data<T>(),
           out.data<int64_t>(), layout.outer, layout.length, layout.outer_ix, layout.inner_ix);
  });
  return out;
}

}  // namespace tg::cuda
