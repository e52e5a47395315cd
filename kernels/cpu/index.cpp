// CPU index primitives: gather rows of a table (embedding), the scatter-add that is its
// backward, and one-hot encoding. Indices are range-checked before any work starts.
#include <cstring>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg {

using namespace cpu;

namespace {
void check_indices(const char* op, const Tensor& index, int64_t rows, const char* what) {
  const int64_t* idx = index.data<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i)
    check(idx[i] >= 0 && idx[i] < rows, op, ": index ", idx[i], " at position ", i,
          " is out of range for ", rows, " ", what);
}
}  // namespace

Tensor CpuBackend::index_select(const Tensor& table_in, const Tensor& index_in) {
  const Tensor table = contiguous_copy_if_needed(table_in);
  const Tensor index = contiguous_copy_if_needed(index_in);
  const int64_t rows = table.size(0);
  check_indices("embedding", index, rows, "table rows");
  Shape out_shape = index.shape();
  out_shape.insert(out_shape.end(), table.shape().begin() + 1, table.shape().end());
  Tensor out = Tensor::empty(out_shape, table.dtype());
  const int64_t width = rows == 0 ? 0 : table.numel() / rows;
  const size_t row_bytes = width * dtype_size(table.dtype());
  const int64_t* idx = index.data<int64_t>();
  const char* src = static_cast<const char*>(table.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  parallel_for(index.numel(), 256, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memcpy(dst + i * row_bytes, src + idx[i] * row_bytes, row_bytes);
  });
  return out;
}

Tensor CpuBackend::index_add(const Tensor& src_in, const Tensor& index_in, int64_t rows) {
  const Tensor src = contiguous_copy_if_needed(src_in);
  const Tensor index = contiguous_copy_if_needed(index_in);
  check_indices("index_add", index, rows, "rows");
  Shape out_shape{rows};
  out_shape.insert(out_shape.end(), src.shape().begin() + index.dim(), src.shape().end());
  Tensor out = Tensor::empty(out_shape, src.dtype());
  fill(out, 0);
  const int64_t width = numel(out_shape) / std::max<int64_t>(rows, 1);
  dispatch(src.dtype(), [&]<typename T>() {
    const int64_t* idx = index.data<int64_t>();
    const T* s = src.data<T>();
    T* o = out.data<T>();
    // Threads split the columns, not the indices: no two threads touch one element, and every
    // element sums its contributions in index order, so the result is deterministic.
    parallel_for(width, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(index.numel(), 1)),
                 [&](int64_t c0, int64_t c1) {
                   for (int64_t i = 0; i < index.numel(); ++i)
                     for (int64_t c = c0; c < c1; ++c) o[idx[i] * width + c] += s[i * width + c];
                 });
  });
  return out;
}

Tensor CpuBackend::one_hot(const Tensor& index_in, int64_t classes, DType dtype) {
  const Tensor index = contiguous_copy_if_needed(index_in);
  check_indices("one_hot", index, classes, "classes");
  Shape out_shape = index.shape();
  out_shape.push_back(classes);
  Tensor out = Tensor::empty(out_shape, dtype);
  fill(out, 0);
  dispatch(dtype, [&]<typename T>() {
    const int64_t* idx = index.data<int64_t>();
    T* o = out.data<T>();
    for (int64_t i = 0; i < index.numel(); ++i) o[i * classes + idx[i]] = T(1);
  });
  return out;
}

}  // namespace tg
