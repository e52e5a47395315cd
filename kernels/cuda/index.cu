// CUDA index primitives: gather rows of a table (embedding), the scatter-add that is its
// backward, and one-hot encoding (the CUDA twin of kernels/cpu/index.cpp). Any dtype, as on the
// CPU. Inputs are made contiguous first, so a row of the table or of src is `width` consecutive
// elements.
//
// Indices live on the device and are range-checked there before any work starts: a kernel
// records the first bad position (an integer atomicMin, so the answer does not depend on
// timing), the host reads that one flag back and throws the CPU's error message.
//
// index_add must be deterministic, so it uses no float atomics. Where it fits, it sorts the
// indices by row first and sums each row in groups (kernels/cuda/index_add_sorted.cu): work in
// proportion to the indices, and short chains of adds even for a row that thousands of indices
// point at, in an order of its own (index_add_sorted.h). Else, or with the sorted path switched
// off, the tiled kernel below: each output element (row r, column c)
// adds src[i, c] for every i with index[i] == r, in increasing i, into a sum in T that starts at
// 0: the CPU's order exactly, so the two agree bit for bit. One block per row r and 256 columns
// finds those i together: it reads the index array a tile of 256 at a time, lists the tile's
// matches in order (a prefix count of the hits within each warp, then across the warps) in
// shared memory, and each thread adds its column of the listed rows of src. So the index array
// is read rows * ceil(width / 256) times, by whole blocks, rather than once per output element
// (which for the nanda value table, 342 rows of 512 by 11,490 indices, was 2 * 10^9 compares).
// Up to four scatter-adds share a launch (index_add_together, grid z): the attention backward's
// q, k, value and residual tables.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_guard.h"
#include "kernels/cuda/index_add_sorted.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/warp.cuh"
#include "kernels/dispatch.h"

namespace tg::cuda {

namespace {

// out[i, c] = table[index[i], c] for the n * width output elements.
template <typename T>
__global__ void index_select_kernel(const T* table, const int64_t* index, T* out, int64_t n,
                                    int64_t width) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(e, n * width) {
    const int64_t i = e / width, c = e % width;
    out[e] = table[index[i] * width + c];
  }
}

constexpr int kAddThreads = 256;  // a block's threads: indices per tile, columns per block
constexpr int kAddWarps = kAddThreads / kWarp;

// One scatter-add: src [n, width] added row by row into out [rows, width] where index points.
template <typename T>
struct ScatterAdd {
  const T* src;
  const int64_t* index;
  T* out;
  int64_t n, rows, width;
};
template <typename T>
struct ScatterAdds {
  ScatterAdd<T> of[kMaxScatterAdds];
};

// out[r, c] = sum of src[i, c] over the i with index[i] == r, in increasing i (see the top), for
// the scatter-add blockIdx.z, r = blockIdx.x and c in the block's kAddThreads columns. The grid
// covers the largest of them: a block past its own one's rows or columns has nothing to do.
template <typename T>
__global__ void index_add_kernel(ScatterAdds<T> adds) {
  kernel_prologue();
  __shared__ int64_t matches[kAddThreads];  // this tile's i with index[i] == r, in order
  __shared__ int warp_matches[kAddWarps];
  const ScatterAdd<T> add = adds.of[blockIdx.z];
  const T* const src = add.src;
  const int64_t* const index = add.index;
  const int64_t n = add.n, width = add.width;
  const int64_t r = blockIdx.x;
  const int64_t c0 = static_cast<int64_t>(blockIdx.y) * kAddThreads;
  if (r >= add.rows || c0 >= width) return;  // the whole block: no barrier is skipped
  const int64_t c = c0 + threadIdx.x;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  T total = T(0);
  for (int64_t tile = 0; tile < n; tile += kAddThreads) {
    const int64_t i = tile + threadIdx.x;
    const int hit = i < n && index[i] == r ? 1 : 0;
    int upto = hit;  // hits in this warp up to and including this lane
    for (int step = 1; step < kWarp; step *= 2) {
      const int below = __shfl_up_sync(kFullMask, upto, step);
      if (lane >= step) upto += below;
    }
    if (lane == kWarp - 1) warp_matches[warp] = upto;
    __syncthreads();
    int before = 0, count = 0;  // hits in the warps before this one; in the whole tile
    for (int w = 0; w < kAddWarps; ++w) {
      before += w < warp ? warp_matches[w] : 0;
      count += warp_matches[w];
    }
    if (hit) matches[before + upto - 1] = i;
    __syncthreads();
    if (c < width)
      for (int k = 0; k < count; ++k) total += src[matches[k] * width + c];
    __syncthreads();  // the next tile rewrites the lists
  }
  if (c < width) add.out[r * width + c] = total;
}

// out[i, k] = (k == index[i]) for the n * classes output elements.
template <typename T>
__global__ void one_hot_kernel(const int64_t* index, T* out, int64_t n, int64_t classes) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(e, n * classes) {
    out[e] = index[e / classes] == e % classes ? T(1) : T(0);
  }
}

// Throws, with the CPU's message, when a value of `index` (contiguous, on the backend's device)
// lies outside [0, limit). Waits for the stream once; a no-op for an empty index.
void check_indices(const char* op, const Tensor& index, int64_t limit, const char* what) {
  const int64_t i = first_out_of_range(index, limit);
  if (i < 0) return;
  throw Error(cat(op, ": index ", index.to_vector<int64_t>()[i], " at position ", i,
                  " is out of range for ", limit, " ", what));
}

}  // namespace

Tensor CudaBackend::index_select(const Tensor& table_in, const Tensor& index_in) {
  check_on(table_in, device(), "index_select", "table");
  check_on(index_in, device(), "index_select", "index");
  const Tensor table = contiguous_copy_if_needed(table_in);
  const Tensor index = contiguous_copy_if_needed(index_in);
  const int64_t rows = table.size(0);
  DeviceGuard guard(index_);
  check_indices("embedding", index, rows, "table rows");
  Shape out_shape = index.shape();
  out_shape.insert(out_shape.end(), table.shape().begin() + 1, table.shape().end());
  Tensor out = Tensor::empty(out_shape, table.dtype(), device());
  const int64_t n = index.numel(), width = rows == 0 ? 0 : table.numel() / rows;
  if (n * width == 0) return out;
  dispatch(table.dtype(), [&]<typename T>() {
    launch(index_select_kernel<T>, grid_for(n * width), kBlockThreads, current_stream(index_),
           table.data<T>(), index.data<int64_t>(), out.data<T>(), n, width);
  });
  return out;
}

Tensor CudaBackend::index_add(const Tensor& src, const Tensor& index, int64_t rows) {
  return index_add_together({{src, index, rows}}).front();
}

std::vector<Tensor> CudaBackend::index_add_together(const std::vector<IndexAdd>& adds) {
  check(adds.size() <= static_cast<size_t>(kMaxScatterAdds), "index_add_together: ",
        adds.size(), " scatter-adds, at most ", kMaxScatterAdds, " in one launch");
  DeviceGuard guard(index_);
  std::vector<Tensor> srcs, indices, outs;
  for (const IndexAdd& a : adds) {
    check_on(a.src, device(), "index_add", "src");
    check_on(a.index, device(), "index_add", "index");
    check(a.src.dtype() == adds.front().src.dtype(), "index_add_together: dtypes differ");
    srcs.push_back(contiguous_copy_if_needed(a.src));
    indices.push_back(contiguous_copy_if_needed(a.index));
    check_indices("index_add", indices.back(), a.rows, "rows");
    Shape out_shape{a.rows};
    out_shape.insert(out_shape.end(), srcs.back().shape().begin() + indices.back().dim(),
                     srcs.back().shape().end());
    outs.push_back(Tensor::empty(out_shape, a.src.dtype(), device()));
  }
  // The sorted path (index_add_sorted.h) when every scatter-add with indices and an output fits
  // it; an output that no index points into is zeros.
  std::vector<SortedScatterAdd> sorted;
  std::vector<Tensor*> zeros;
  bool all_fit = sorted_index_add_enabled();
  for (size_t t = 0; t < adds.size() && all_fit; ++t) {
    if (outs[t].numel() == 0) continue;  // nothing to write
    const int64_t n = indices[t].numel(), width = outs[t].numel() / adds[t].rows;
    if (n == 0) {
      zeros.push_back(&outs[t]);
      continue;
    }
    all_fit = sorted_index_add_fits(n, adds[t].rows, width);
    sorted.push_back({srcs[t], indices[t], outs[t], adds[t].rows});
  }
  if (all_fit) {
    for (Tensor* out : zeros) fill(*out, 0);
    if (!sorted.empty()) sorted_index_add(sorted, current_stream(index_));
    return outs;
  }
  dispatch(adds.empty() ? DType::Float32 : adds.front().src.dtype(), [&]<typename T>() {
    ScatterAdds<T> launch_adds{};
    int count = 0;
    int64_t max_rows = 0, max_column_blocks = 0;
    for (size_t t = 0; t < adds.size(); ++t) {
      if (outs[t].numel() == 0) continue;  // nothing to write
      const int64_t rows = adds[t].rows, width = outs[t].numel() / rows;
      launch_adds.of[count++] = {srcs[t].data<T>(), indices[t].data<int64_t>(), outs[t].data<T>(),
                                 indices[t].numel(), rows, width};
      max_rows = std::max(max_rows, rows);
      max_column_blocks = std::max(max_column_blocks, (width + kAddThreads - 1) / kAddThreads);
    }
    if (count == 0) return;
    check(max_rows <= std::numeric_limits<int32_t>::max() && max_column_blocks <= 65535,
          "index_add: ", max_rows, " rows of ", max_column_blocks * kAddThreads,
          " elements exceed one launch's grid");
    const dim3 grid(static_cast<unsigned>(max_rows), static_cast<unsigned>(max_column_blocks),
                    static_cast<unsigned>(count));
    launch(index_add_kernel<T>, grid, kAddThreads, current_stream(index_), launch_adds);
  });
  return outs;
}

Tensor CudaBackend::one_hot(const Tensor& index_in, int64_t classes, DType dtype) {
  check_on(index_in, device(), "one_hot", "index");
  const Tensor index = contiguous_copy_if_needed(index_in);
  DeviceGuard guard(index_);
  check_indices("one_hot", index, classes, "classes");
  Shape out_shape = index.shape();
  out_shape.push_back(classes);
  Tensor out = Tensor::empty(out_shape, dtype, device());
  const int64_t n = index.numel();
  if (out.numel() == 0) return out;
  dispatch(dtype, [&]<typename T>() {
    launch(one_hot_kernel<T>, grid_for(n * classes), kBlockThreads, current_stream(index_),
           index.data<int64_t>(), out.data<T>(), n, classes);
  });
  return out;
}

}  // namespace tg::cuda
