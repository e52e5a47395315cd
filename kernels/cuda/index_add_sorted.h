// The scatter-add of CudaBackend::index_add_together by sorting the indices first
// (kernels/cuda/index_add_sorted.cu), and the switch between it and the tiled kernel of
// kernels/cuda/index.cu, for tests and benchmarks that compare the two on the same inputs.
#pragma once

#include <cstdint>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/tensor.h"

namespace tg::cuda {

// The sorted path's order: each row's contributions, in increasing position, are summed in the
// groups that tiles of kScatterGroup consecutive entries of the sorted list cut them into (each
// group from 0, in order), then the groups from 0 in order. A row whose entries lie in one tile
// gets the CPU's order exactly; a row of thousands (the "=" token's row of the nanda step) gets
// sums whose chains are at most 64 long, instead of one chain of thousands.
constexpr int64_t kScatterGroup = 64;

// On (the default, unless the environment sets TG_CUDA_INDEX_ADD=tiled): index_add and
// index_add_together take the sorted path wherever it fits. Off: the tiled kernel always, whose
// sums are the CPU's, bit for bit. Process-wide; not for use while another thread scatters.
void set_sorted_index_add(bool enabled);
bool sorted_index_add_enabled();

// Whether the sorted path takes n indices into `rows` rows of `width` elements (all > 0): its
// count table has one cell per row for every 256 indices, and must stay small.
bool sorted_index_add_fits(int64_t n, int64_t rows, int64_t width);

// Scatter-adds in one call of CudaBackend::index_add_together, by either path: the attention
// backward's q, k, value and residual tables.
constexpr int kMaxScatterAdds = 4;

// Rows of a scatter-add's source computed as they are read, not read from a buffer: row n is
// `heads` blocks of head_width columns, and block h of it is weights[n, h] times the head_width
// elements of x from x_row * x_row_stride + h * x_head_stride, where x_row is x_rows[n / group]
// (or n / group itself when x_rows is undefined). Each product is rounded on its own, so the sums
// are the bits they would be from a buffer holding the rounded products. The attention backward's
// key and value tables take their gradients so: weight P (values) or scale dS (keys) times the
// query's dz or its q row, and a buffer of those would be B T H (Dh + Dv) elements, written and
// read again. (The partial sums, below, are still allocated [n, width]: a run's sum goes to its
// first slot in each tile; compacting them would save memory, not traffic.)
struct WeightedRows {
  Tensor weights;  // [n, heads]
  Tensor x;
  Tensor x_rows;   // [n / group], or undefined
  int64_t group = 1, heads = 1, head_width = 0, x_row_stride = 0, x_head_stride = 0;
};

// One scatter-add: out [rows, width] = the rows of src [n, width] added where index [n] points
// (src undefined: the rows of `weighted`, width heads * head_width). src, index and the weighted
// rows' tensors contiguous on the device, the indices already range-checked; out allocated.
struct SortedScatterAdd {
  Tensor src, index, out;
  int64_t rows;
  WeightedRows weighted{};
};

// Up to kMaxScatterAdds scatter-adds, all of one dtype, each fitting (sorted_index_add_fits), on
// `stream`: one launch for each of the sort's three steps (for every distinct index together),
// then one for the groups' sums and one for the rows' totals.
void sorted_index_add(const std::vector<SortedScatterAdd>& adds, cudaStream_t stream);

}  // namespace tg::cuda
