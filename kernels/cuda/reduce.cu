// CUDA reductions (the CUDA twin of kernels/cpu/reduce.cpp): sum, mean and max over any sorted
// set of axes, and argmax along one axis, on strided inputs.
//
// The output's elements are the row-major order of x's kept axes (an outer StridedIndexer gives
// each one's base offset in x); its reduced elements are the row-major order j of x's reduced
// axes (an inner StridedIndexer). Each output is reduced in one of two ways, chosen from the
// reduction's (outer, length) alone (plan_for says when and why):
//  - a warp per output, when outputs are many (the rows of a matrix): lane l folds in
//    j = l, l + 32, ... in increasing order, then a fixed shuffle tree combines the 32 lanes into
//    lane 0, which writes the output;
//  - a block per output, when they are few and long (a full sum to one number): thread t folds
//    in j = t, t + 256, ..., each warp combines its lanes by the same tree, and warp 0 combines
//    the 8 warps' results, read from shared memory, by that tree again. When even that leaves
//    most of the GPU idle (one output of a million elements), each output's j are cut into a
//    fixed number of consecutive parts, a block each, and a second launch combines each output's
//    parts' results as the warp path combines elements (two passes, no atomics).
// The path, the block size and the parts are fixed by (outer, length), and nothing depends on
// the grid's size or on timing, so every run gives the same bits; the two paths may differ in
// the last bits of a float sum, as any two orders do. As on the CPU, float sums accumulate in
// double (int64 in wrapping int64); max and argmax follow the CPU's NaN rules: a NaN is the max
// of anything, and argmax gives the first NaN, else the first maximum.
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
#include "kernels/cuda/reduce_plan.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/strided_indexer.h"
#include "kernels/dispatch.h"

namespace tg::cuda {

namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kBlockWarps = kBlockThreads / kWarp;

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

// How each output is spread over threads: plan_for, in kernels/cuda/reduce_plan.h.

// ---- the reductions: what a thread carries, and how it combines ---------------------------------

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

// Each reduction says what a thread carries (State), where it starts, how element j of value v
// folds in, how a state combines with one of later elements, how a state moves between lanes,
// and what the output is. States are plain data: they live in shared memory and partials.

// The sum or, with `mean`, the mean (ReduceOp::Mean: the sum rounded to T, then scaled in
// double, as kernels/cpu/reduce.cpp does).
template <typename T>
struct SumOp {
  using In = T;
  using Out = T;
  using State = std::conditional_t<std::is_floating_point_v<T>, double, T>;
  bool mean = false;

  __device__ static State start() { return 0; }
  __device__ static void fold(State& s, T v, int64_t) {
    s = wrapping_add(s, static_cast<State>(v));
  }
  __device__ static void combine(State& s, State later) { s = wrapping_add(s, later); }
  __device__ static State shuffle_down(State s, int step) {
    return __shfl_down_sync(kFullMask, s, step);
  }
  __device__ Out finish(State s, int64_t length) const {
    const T sum = static_cast<T>(s);
    if (!mean) return sum;
    return static_cast<T>(static_cast<double>(sum) * (1.0 / static_cast<double>(length)));
  }
};

template <typename T>
struct MaxOp {
  using In = T;
  using Out = T;
  using State = T;

  __device__ static State start() { return lowest<T>(); }
  __device__ static void fold(State& s, T v, int64_t) { s = max_of(s, v); }
  __device__ static void combine(State& s, State later) { s = max_of(s, later); }
  __device__ static State shuffle_down(State s, int step) {
    return __shfl_down_sync(kFullMask, s, step);
  }
  __device__ Out finish(State s, int64_t) const { return s; }
};

template <typename T>
struct ArgmaxState {
  T value;
  int64_t index;  // -1: no candidate yet
};

template <typename T>
struct ArgmaxOp {
  using In = T;
  using Out = int64_t;
  using State = ArgmaxState<T>;

  __device__ static State start() { return {T(0), -1}; }
  __device__ static void fold(State& s, T v, int64_t j) { argmax_combine(s.value, s.index, v, j); }
  __device__ static void combine(State& s, State later) {
    argmax_combine(s.value, s.index, later.value, later.index);
  }
  __device__ static State shuffle_down(State s, int step) {
    return {__shfl_down_sync(kFullMask, s.value, step),
            __shfl_down_sync(kFullMask, s.index, step)};
  }
  __device__ Out finish(State s, int64_t) const { return s.index; }
};

// ---- the kernels --------------------------------------------------------------------------------

// One reduction of x: its outputs, where its elements lie, and its plan. A launch takes up to
// two (reduce_sum_pair); an absent one has no outputs.
template <typename Op>
struct ReduceJob {
  typename Op::Out* out = nullptr;
  typename Op::State* partials = nullptr;  // [outer, parts], when parts > 1
  int64_t outer = 0, length = 0;
  StridedIndexer<1> outer_ix, inner_ix;
  ReducePlan plan;

  // A block's units of work: kBlockWarps outputs, a warp each, or one part of one output.
  __host__ __device__ int64_t units() const {
    return plan.by_block ? outer * plan.parts : (outer + kBlockWarps - 1) / kBlockWarps;
  }
};

// Folds into s the elements j = first, first + stride, ... (below end) of the output at x + base,
// in that order.
template <typename Op>
__device__ __forceinline__ void fold_elements(typename Op::State& s, const typename Op::In* x,
                                              int64_t base, const StridedIndexer<1>& inner_ix,
                                              int64_t first, int64_t end, int64_t stride) {
  int64_t off[1];
  for (int64_t j = first; j < end; j += stride) {
    inner_ix.offsets(j, off);
    Op::fold(s, x[base + off[0]], j);
  }
}

// The warp's 32 states combined into lane 0's (the other lanes hold partial results). Lane l
// takes lane l + step's, the later elements, so the order is fixed. Call with the full warp.
template <typename Op>
__device__ __forceinline__ typename Op::State warp_combine(typename Op::State s) {
  for (int step = kWarp / 2; step > 0; step /= 2) Op::combine(s, Op::shuffle_down(s, step));
  return s;
}

// The block's states combined into thread 0's: each warp's lanes, then warp 0 combines the
// warps' results by the same tree. Every thread of the block must call it.
template <typename Op>
__device__ typename Op::State block_combine(typename Op::State s) {
  __shared__ typename Op::State warp_results[kBlockWarps];
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  s = warp_combine<Op>(s);
  if (lane == 0) warp_results[warp] = s;
  __syncthreads();
  if (warp == 0) s = warp_combine<Op>(lane < kBlockWarps ? warp_results[lane] : Op::start());
  __syncthreads();  // every warp has read warp_results before the block's next unit writes them
  return s;
}

// Unit u of a job (ReduceJob::units): the outputs of its warps, or a part of one output.
template <typename Op>
__device__ void reduce_unit(const typename Op::In* x, const Op& op, const ReduceJob<Op>& job,
                            int64_t u) {
  using State = typename Op::State;
  int64_t base[1];
  if (!job.plan.by_block) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int64_t o = u * kBlockWarps + static_cast<int64_t>(threadIdx.x) / kWarp;
    if (o >= job.outer) return;  // the whole warp
    job.outer_ix.offsets(o, base);
    State s = Op::start();
    fold_elements<Op>(s, x, base[0], job.inner_ix, lane, job.length, kWarp);
    s = warp_combine<Op>(s);
    if (lane == 0) job.out[o] = op.finish(s, job.length);
    return;
  }
  const int64_t parts = job.plan.parts;
  const int64_t o = u / parts, part = u % parts;
  const int64_t chunk = (job.length + parts - 1) / parts;
  const int64_t begin = part * chunk, end = std::min(begin + chunk, job.length);
  job.outer_ix.offsets(o, base);
  State s = Op::start();
  fold_elements<Op>(s, x, base[0], job.inner_ix, begin + threadIdx.x, end, kBlockThreads);
  s = block_combine<Op>(s);
  if (threadIdx.x != 0) return;
  if (parts == 1) job.out[o] = op.finish(s, job.length);
  else job.partials[u] = s;  // u = o * parts + part
}

// Every output of `first`, then of `second`; split outputs get their parts' results in
// partials (combine_parts_kernel finishes them).
template <typename Op>
__global__ void reduce_kernel(const typename Op::In* x, Op op, ReduceJob<Op> first,
                              ReduceJob<Op> second) {
  kernel_prologue();
  const int64_t first_units = first.units(), units = first_units + second.units();
  // A unit, and so its path, depends on blockIdx only: uniform across the block, as
  // block_combine's barriers require.
  for (int64_t u = blockIdx.x; u < units; u += gridDim.x) {
    if (u < first_units) reduce_unit(x, op, first, u);
    else reduce_unit(x, op, second, u - first_units);
  }
}

// How many of a job's outputs are split (all or none: parts is the job's).
template <typename Op>
__host__ __device__ int64_t split_outputs(const ReduceJob<Op>& job) {
  return job.plan.parts > 1 ? job.outer : 0;
}

// The second pass: each split output's parts' results (at most ~kSplitBlocks) combined as the
// warp path combines elements, a warp per output: lane l takes parts l, l + 32, ... in order,
// then the shuffle tree.
template <typename Op>
__global__ void combine_parts_kernel(Op op, ReduceJob<Op> first, ReduceJob<Op> second) {
  kernel_prologue();
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t first_split = split_outputs(first);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp;
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
       i < first_split + split_outputs(second); i += warps) {
    const bool in_first = i < first_split;
    const ReduceJob<Op>& job = in_first ? first : second;
    const int64_t o = in_first ? i : i - first_split, parts = job.plan.parts;
    typename Op::State s = Op::start();
    for (int64_t part = lane; part < parts; part += kWarp)
      Op::combine(s, job.partials[o * parts + part]);
    s = warp_combine<Op>(s);
    if (lane == 0) job.out[o] = op.finish(s, job.length);
  }
}

template <typename Op>
ReduceJob<Op> job_for(typename Op::Out* out, const ReduceLayout& layout) {
  ReduceJob<Op> job;
  job.out = out;
  job.outer = layout.outer;
  job.length = layout.length;
  job.outer_ix = layout.outer_ix;
  job.inner_ix = layout.inner_ix;
  job.plan = plan_for(layout.outer, layout.length);
  return job;
}

// Runs one or two jobs (each with outputs and elements) on the stream, with room for the
// partial results of split outputs (freed here: the stream runs the kernels before any reuse).
template <typename Op>
void run_jobs(Device device, cudaStream_t stream, const typename Op::In* x, const Op& op,
              ReduceJob<Op> first, ReduceJob<Op> second = {}) {
  using State = typename Op::State;
  const int64_t first_partials = split_outputs(first) * first.plan.parts;
  const int64_t second_partials = split_outputs(second) * second.plan.parts;
  Tensor partials;
  if (first_partials + second_partials > 0) {
    const int64_t bytes = (first_partials + second_partials) * static_cast<int64_t>(sizeof(State));
    partials = Tensor::empty({(bytes + 7) / 8}, DType::Int64, device);
    State* room = reinterpret_cast<State*>(partials.data<int64_t>());
    if (first_partials > 0) first.partials = room;
    if (second_partials > 0) second.partials = room + first_partials;
  }
  const int64_t units = first.units() + second.units();
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(units, int64_t{1} << 16));
  launch(reduce_kernel<Op>, grid, kBlockThreads, stream, x, op, first, second);
  if (partials.defined()) {
    const int64_t split = split_outputs(first) + split_outputs(second);
    launch(combine_parts_kernel<Op>, grid_for(split * kWarp), kBlockThreads, stream, op, first,
           second);
  }
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
  dispatch(x.dtype(), [&]<typename T>() {
    if (op == ReduceOp::Max)
      run_jobs(device(), stream, x.data<T>(), MaxOp<T>{},
               job_for<MaxOp<T>>(out.data<T>(), layout));
    else
      run_jobs(device(), stream, x.data<T>(), SumOp<T>{op == ReduceOp::Mean},
               job_for<SumOp<T>>(out.data<T>(), layout));
  });
  return out;
}

// Both sums in one launch (two with split outputs); each output is computed as alone, by the
// plan reduce would give it, so the bits are reduce's.
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
    run_jobs(device(), current_stream(index_), x.data<T>(), SumOp<T>{},
             job_for<SumOp<T>>(out.first.data<T>(), a),
             job_for<SumOp<T>>(out.second.data<T>(), b));
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
  dispatch(x.dtype(), [&]<typename T>() {
    run_jobs(device(), current_stream(index_), x.data<T>(), ArgmaxOp<T>{},
             job_for<ArgmaxOp<T>>(out.data<int64_t>(), layout));
  });
  return out;
}

}  // namespace tg::cuda
