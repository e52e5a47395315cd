// index_add by sorting the indices by row first: the path CudaBackend::index_add_together takes
// wherever it fits (kernels/cuda/index_add_sorted.h has the order it sums in).
//
// The tiled kernel of index.cu gives each output row a block that reads the whole index array:
// rows x n reads (for the nanda step's key and value tables, 342 rows x 11,490 indices, per
// 256 columns), and one chain of adds per column as long as the row's count. The nanda step has
// rows of thousands: the last position's token is always "=", so one table row takes all 3,830
// examples' gradients, and one thread per column adds 3,830 values one after the other, each a
// load from memory.
//
// Here the indices are sorted by row once, with a stable counting sort, in three launches for
// every distinct index array together (the attention backward has two: its q rows and its key
// rows, each used by two of its four tables):
//   count   chunk q of 256 indices counts its rows into base[q, r] (integer atomics: counts do not
//           depend on the order the adds arrive in);
//   starts  one block per index array: each row's chunk counts become the offsets of the chunks'
//           entries within the row, and the rows' totals become their starts in the sorted list;
//   place   each index goes to slot start[r] + base[q, r] + (the chunk's earlier indices of r).
// Then the sums, in two launches for every scatter-add together:
//   groups  each tile of kScatterGroup sorted entries sums, column by column, the runs of one row
//           it holds, in order, into partial[the run's first slot];
//   totals  each row adds its runs' partial sums in order.
// No chain is longer than kScatterGroup adds or a row's count over kScatterGroup, and nothing
// depends on timing: the results are the same bits every run. A scatter-add's source rows may be
// weighted rows of another tensor (WeightedRows), each product formed, rounded, as the groups'
// sums read it.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/index_add_sorted.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/rounded.cuh"
#include "kernels/dispatch.h"

namespace tg::cuda {

namespace {

constexpr int kSortThreads = 256;    // indices per chunk of the counting sort; a block's threads
constexpr int kStartThreads = 1024;  // row_starts_kernel's threads: a row each, up to 1024 rows
constexpr int kColumns = 128;        // columns per block of the sums; a block's threads
constexpr int kBatch = 8;            // loads a thread issues before it adds the first of them
// chunks x rows count cells at most (8 bytes each): beyond that the tiled kernel scatters.
constexpr int64_t kMaxCountCells = int64_t{1} << 22;

// One index array's stable counting sort by row.
struct RowSort {
  const int64_t* index;  // [n]
  int64_t n, rows, chunks;
  unsigned long long* base;  // [chunks, rows]: counts, then each chunk's offset within a row
  int64_t* start;            // [rows + 1]: row r's entries are sorted[start[r] .. start[r + 1])
  int64_t* sorted;           // [n]: positions by row, increasing within a row
};
struct RowSorts {
  RowSort of[kMaxScatterAdds];
};

// base[q, r] = how many of chunk q's indices are r; grid (chunks, 1, sorts).
__global__ void count_rows_kernel(RowSorts sorts) {
  kernel_prologue();
  const RowSort s = sorts.of[blockIdx.z];
  const int64_t q = blockIdx.x;
  if (q >= s.chunks) return;  // the whole block: no barrier is skipped
  unsigned long long* counts = s.base + q * s.rows;
  for (int64_t r = threadIdx.x; r < s.rows; r += blockDim.x) counts[r] = 0;
  __syncthreads();  // the zeros, before any thread of the block counts
  const int64_t i = q * kSortThreads + threadIdx.x;
  if (i < s.n) atomicAdd(&counts[s.index[i]], 1ull);
}

// The exclusive prefix sums of the block's values (one a thread) and, in *total, their sum.
__device__ int64_t block_exclusive_scan(int64_t v, int64_t* scratch, int64_t* total) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int step = 1; step < kStartThreads; step *= 2) {
    const int64_t below = threadIdx.x >= static_cast<unsigned>(step) ? scratch[threadIdx.x - step]
                                                                      : 0;
    __syncthreads();
    scratch[threadIdx.x] += below;
    __syncthreads();
  }
  *total = scratch[kStartThreads - 1];
  const int64_t inclusive = scratch[threadIdx.x];
  __syncthreads();  // every thread has read scratch before the next call writes it
  return inclusive - v;
}

// Each row's chunk counts become offsets within the row (in chunk order), and start[] the rows'
// places in the sorted list; one block per index array, grid (1, 1, sorts) (1024 threads: at
// most 64 registers each, which __launch_bounds__ holds it to).
__global__ void __launch_bounds__(kStartThreads) row_starts_kernel(RowSorts sorts) {
  kernel_prologue();
  __shared__ int64_t scratch[kStartThreads];
  const RowSort s = sorts.of[blockIdx.z];
  for (int64_t r = threadIdx.x; r < s.rows; r += blockDim.x) {
    unsigned long long running = 0;
    for (int64_t q0 = 0; q0 < s.chunks; q0 += kBatch) {
      unsigned long long count[kBatch];  // loaded together, then turned into offsets in order
#pragma unroll
      for (int k = 0; k < kBatch; ++k)
        count[k] = q0 + k < s.chunks ? s.base[(q0 + k) * s.rows + r] : 0;
#pragma unroll
      for (int k = 0; k < kBatch; ++k) {
        if (q0 + k < s.chunks) s.base[(q0 + k) * s.rows + r] = running;
        running += count[k];
      }
    }
    s.start[r] = static_cast<int64_t>(running);  // the row's total, for now
  }
  // The totals' exclusive prefix sums, a tile of rows at a time, carried across tiles. Thread t
  // reads and writes only rows t, t + 1024, ...: the rows it totalled above.
  int64_t carry = 0;
  for (int64_t r0 = 0; r0 < s.rows; r0 += kStartThreads) {
    const int64_t r = r0 + threadIdx.x;
    int64_t tile_total = 0;
    const int64_t before = block_exclusive_scan(r < s.rows ? s.start[r] : 0, scratch, &tile_total);
    if (r < s.rows) s.start[r] = carry + before;
    carry += tile_total;
  }
  if (threadIdx.x == 0) s.start[s.rows] = carry;
}

// Each index to its slot in the sorted list: start[r] + the chunk's offset within row r + how
// many of the chunk's earlier indices are r; grid (chunks, 1, sorts).
__global__ void place_kernel(RowSorts sorts) {
  kernel_prologue();
  __shared__ int64_t chunk_rows[kSortThreads];
  const RowSort s = sorts.of[blockIdx.z];
  const int64_t q = blockIdx.x;
  if (q >= s.chunks) return;  // the whole block
  const int64_t i = q * kSortThreads + threadIdx.x;
  const int64_t r = i < s.n ? s.index[i] : -1;
  chunk_rows[threadIdx.x] = r;
  __syncthreads();
  if (r < 0) return;
  int64_t rank = 0;
  for (unsigned j = 0; j < threadIdx.x; ++j) rank += chunk_rows[j] == r ? 1 : 0;
  s.sorted[s.start[r] + static_cast<int64_t>(s.base[q * s.rows + r]) + rank] = i;
}

// Row n's elements computed from WeightedRows (index_add_sorted.h). The divisions are 64-bit
// (tens of instructions each), so none is in the sums' loop: a thread's column gives its head
// and offset once, and each entry's x row is found once, when the tile's entries are staged.
template <typename T>
struct WeightedSource {
  const T* weights;  // [n, heads]; null: the scatter-add reads src
  const T* x;
  const int64_t* x_rows;
  int64_t group, heads, head_width, x_row_stride, x_head_stride;

  struct Column {
    int64_t head, x_offset;  // x's element for column c of a row: its x row's start + x_offset
  };
  __device__ Column column(int64_t c) const {
    const int64_t h = c / head_width;
    return {h, h * x_head_stride + c % head_width};
  }
  // Where entry n's x row starts.
  __device__ int64_t x_start(int64_t n) const {
    const int64_t m = n / group;
    return (x_rows != nullptr ? x_rows[m] : m) * x_row_stride;
  }
  __device__ T at(int64_t n, int64_t x_row_start, Column col) const {
    const T w = weights[n * heads + col.head], v = x[x_row_start + col.x_offset];
    if constexpr (std::is_floating_point_v<T>) return mul_rn(w, v);  // never fused with the add
    else return w * v;
  }
};

// One scatter-add over its index array's sorted list.
template <typename T>
struct GroupedAdd {
  const T* src;           // [n, width], or null for `weighted`
  WeightedSource<T> weighted;
  const int64_t* index;   // [n]
  const int64_t* sorted;  // [n]
  const int64_t* start;   // [rows + 1]
  T* partial;             // [n, width]: each run's sum at the run's first slot
  T* out;                 // [rows, width]
  int64_t n, rows, width;
};
template <typename T>
struct GroupedAdds {
  GroupedAdd<T> of[kMaxScatterAdds];
};

// Tile blockIdx.x of kScatterGroup sorted entries, columns blockIdx.y * kColumns + threadIdx.x:
// the sum of each run of one row's entries, in order, from 0; grid (tiles, column blocks, adds).
template <typename T>
__global__ void group_sums_kernel(GroupedAdds<T> adds) {
  kernel_prologue();
  __shared__ int64_t position[kScatterGroup];
  __shared__ int64_t row[kScatterGroup];
  __shared__ int64_t x_start[kScatterGroup];  // weighted rows: where each entry's x row starts
  const GroupedAdd<T> a = adds.of[blockIdx.z];
  const int64_t p0 = static_cast<int64_t>(blockIdx.x) * kScatterGroup;
  const int64_t c0 = static_cast<int64_t>(blockIdx.y) * kColumns;
  if (p0 >= a.n || c0 >= a.width) return;  // the whole block
  const int len = static_cast<int>(a.n - p0 < kScatterGroup ? a.n - p0 : kScatterGroup);
  for (int j = static_cast<int>(threadIdx.x); j < len; j += static_cast<int>(blockDim.x)) {
    position[j] = a.sorted[p0 + j];
    row[j] = a.index[position[j]];
    if (a.src == nullptr) x_start[j] = a.weighted.x_start(position[j]);
  }
  __syncthreads();
  const int64_t c = c0 + threadIdx.x;
  if (c >= a.width) return;
  const auto column = a.src == nullptr ? a.weighted.column(c)
                                       : typename WeightedSource<T>::Column{};
  T acc = T(0);
  int first = 0;  // the current run's first entry
  for (int j0 = 0; j0 < len; j0 += kBatch) {
    T v[kBatch];  // independent loads in flight together; the adds stay in order
#pragma unroll
    for (int k = 0; k < kBatch; ++k)
      v[k] = j0 + k >= len ? T(0)
             : a.src != nullptr ? a.src[position[j0 + k] * a.width + c]
                                : a.weighted.at(position[j0 + k], x_start[j0 + k], column);
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const int j = j0 + k;
      if (j >= len) break;
      if (row[j] != row[first]) {
        a.partial[(p0 + first) * a.width + c] = acc;
        acc = T(0);
        first = j;
      }
      acc += v[k];
    }
  }
  a.partial[(p0 + first) * a.width + c] = acc;
}

// out[r, c] = row r's runs' partial sums, in order, from 0: its first run starts at start[r],
// the others at the tile boundaries inside it; grid (rows, column blocks, adds).
template <typename T>
__global__ void row_totals_kernel(GroupedAdds<T> adds) {
  kernel_prologue();
  const GroupedAdd<T> a = adds.of[blockIdx.z];
  const int64_t r = blockIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kColumns + threadIdx.x;
  if (r >= a.rows || c >= a.width) return;
  const int64_t end = a.start[r + 1];
  T acc = T(0);
  for (int64_t p = a.start[r]; p < end;) {
    T v[kBatch];  // independent loads in flight together; the adds stay in order
    int loaded = 0;
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      v[k] = T(0);
      if (p < end) {
        v[k] = a.partial[p * a.width + c];
        p = (p / kScatterGroup + 1) * kScatterGroup;
        ++loaded;
      }
    }
#pragma unroll
    for (int k = 0; k < kBatch; ++k)
      if (k < loaded) acc += v[k];
  }
  a.out[r * a.width + c] = acc;
}

int64_t chunks_for(int64_t n) { return (n + kSortThreads - 1) / kSortThreads; }
int64_t column_blocks_for(int64_t width) { return (width + kColumns - 1) / kColumns; }

// Whether `w` describes n rows of `width` elements of `dtype`. With x_rows, which x rows they
// name is on the device: the caller has range-checked them (the attention's q rows).
bool weighted_rows_fit(const WeightedRows& w, int64_t n, int64_t width, DType dtype) {
  if (!w.weights.defined() || !w.x.defined() || w.weights.dtype() != dtype ||
      w.x.dtype() != dtype || w.group <= 0 || w.heads <= 0 || w.head_width <= 0 ||
      w.heads * w.head_width != width || w.weights.numel() != n * w.heads ||
      w.x_row_stride < 0 || w.x_head_stride < 0)
    return false;
  const int64_t x_rows_needed = (n + w.group - 1) / w.group;
  if (w.x_rows.defined())
    return w.x_rows.dtype() == DType::Int64 && w.x_rows.numel() >= x_rows_needed;
  const int64_t last = (x_rows_needed - 1) * w.x_row_stride + (w.heads - 1) * w.x_head_stride +
                       w.head_width - 1;
  return last < w.x.numel();
}

bool sorted_from_environment() {
  const char* value = std::getenv("TG_CUDA_INDEX_ADD");
  return value == nullptr || std::strcmp(value, "tiled") != 0;
}

std::atomic<bool> sorted_enabled{sorted_from_environment()};

}  // namespace

void set_sorted_index_add(bool enabled) { sorted_enabled.store(enabled); }
bool sorted_index_add_enabled() { return sorted_enabled.load(); }

bool sorted_index_add_fits(int64_t n, int64_t rows, int64_t width) {
  return n > 0 && rows > 0 && width > 0 && rows <= std::numeric_limits<int32_t>::max() &&
         chunks_for(n) <= kMaxCountCells / rows && column_blocks_for(width) <= 65535 &&
         (n + kScatterGroup - 1) / kScatterGroup <= std::numeric_limits<int32_t>::max();
}

void sorted_index_add(const std::vector<SortedScatterAdd>& adds, cudaStream_t stream) {
  check(!adds.empty() && adds.size() <= static_cast<size_t>(kMaxScatterAdds),
        "sorted_index_add: ", adds.size(), " scatter-adds, 1 to ", kMaxScatterAdds, " in one call");
  const DType dtype = adds.front().out.dtype();
  const Device device = adds.front().out.device();

  // One sort per distinct index array (and row count): the attention backward's q and residual
  // tables share the q rows, its key and value tables the key rows.
  RowSorts sorts{};
  int sort_count = 0;
  std::vector<int> sort_of;
  std::vector<Tensor> scratch;  // the sorts' buffers; freed after the launches are queued
  int64_t max_chunks = 0;
  for (const SortedScatterAdd& add : adds) {
    const int64_t n = add.index.numel();
    check(add.out.dtype() == dtype && add.out.numel() > 0 && add.out.numel() % add.rows == 0 &&
              sorted_index_add_fits(n, add.rows, add.out.numel() / add.rows) &&
              (add.src.defined()
                   ? add.src.dtype() == dtype && add.src.numel() == n * (add.out.numel() / add.rows)
                   : weighted_rows_fit(add.weighted, n, add.out.numel() / add.rows, dtype)),
          "sorted_index_add: a scatter-add it does not take");
    int found = -1;
    for (int k = 0; k < sort_count; ++k)
      if (sorts.of[k].index == add.index.data<int64_t>() && sorts.of[k].n == n &&
          sorts.of[k].rows == add.rows)
        found = k;
    if (found < 0) {
      const int64_t chunks = chunks_for(n);
      const Tensor base = Tensor::empty({chunks * add.rows}, DType::Int64, device);
      const Tensor start = Tensor::empty({add.rows + 1}, DType::Int64, device);
      const Tensor sorted = Tensor::empty({n}, DType::Int64, device);
      scratch.insert(scratch.end(), {base, start, sorted});
      found = sort_count++;
      sorts.of[found] = {add.index.data<int64_t>(), n, add.rows, chunks,
                         reinterpret_cast<unsigned long long*>(base.data<int64_t>()),
                         start.data<int64_t>(), sorted.data<int64_t>()};
      max_chunks = std::max(max_chunks, chunks);
    }
    sort_of.push_back(found);
  }
  const auto sorts_grid =
      dim3(static_cast<unsigned>(max_chunks), 1, static_cast<unsigned>(sort_count));
  launch(count_rows_kernel, sorts_grid, kSortThreads, stream, sorts);
  launch(row_starts_kernel, dim3(1, 1, static_cast<unsigned>(sort_count)), kStartThreads, stream,
         sorts);
  launch(place_kernel, sorts_grid, kSortThreads, stream, sorts);

  dispatch(dtype, [&]<typename T>() {
    GroupedAdds<T> grouped{};
    int64_t max_tiles = 0, max_rows = 0, max_column_blocks = 0;
    for (size_t t = 0; t < adds.size(); ++t) {
      const SortedScatterAdd& add = adds[t];
      const RowSort& s = sorts.of[sort_of[t]];
      const int64_t width = add.out.numel() / add.rows;
      const Tensor partial = Tensor::empty({s.n * width}, dtype, device);
      scratch.push_back(partial);
      const WeightedRows& w = add.weighted;
      const WeightedSource<T> weighted =
          add.src.defined()
              ? WeightedSource<T>{}
              : WeightedSource<T>{w.weights.data<T>(), w.x.data<T>(),
                                  w.x_rows.defined() ? w.x_rows.data<int64_t>() : nullptr,
                                  w.group,           w.heads,
                                  w.head_width,      w.x_row_stride,
                                  w.x_head_stride};
      grouped.of[t] = {add.src.defined() ? add.src.data<T>() : nullptr,
                       weighted,
                       s.index,
                       s.sorted,
                       s.start,
                       partial.data<T>(),
                       add.out.data<T>(),
                       s.n,
                       add.rows,
                       width};
      max_tiles = std::max(max_tiles, (s.n + kScatterGroup - 1) / kScatterGroup);
      max_rows = std::max(max_rows, add.rows);
      max_column_blocks = std::max(max_column_blocks, column_blocks_for(width));
    }
    const auto count = static_cast<unsigned>(adds.size());
    const auto columns = static_cast<unsigned>(max_column_blocks);
    launch(group_sums_kernel<T>, dim3(static_cast<unsigned>(max_tiles), columns, count), kColumns,
           stream, grouped);
    launch(row_totals_kernel<T>, dim3(static_cast<unsigned>(max_rows), columns, count), kColumns,
           stream, grouped);
  });
}

}  // namespace tg::cuda
