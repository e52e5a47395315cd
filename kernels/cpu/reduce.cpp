// CPU reductions: permute the reduced axes to the end, make that contiguous, then reduce each
// row of `reduced-size` elements. Float sums accumulate in double.
#include <algorithm>
#include <cmath>

#include "core/wrapping.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg {

using namespace cpu;

namespace {

// x permuted so the reduced axes come last, as a contiguous [outer, reduced] block.
struct Rows {
  Tensor data;
  int64_t outer, length;
};

Rows rows_for(const Tensor& x, const std::vector<int>& axes) {
  std::vector<int64_t> order;
  for (int d = 0; d < x.dim(); ++d)
    if (std::find(axes.begin(), axes.end(), d) == axes.end()) order.push_back(d);
  int64_t length = 1;
  for (int a : axes) {
    order.push_back(a);
    length *= x.shape()[a];
  }
  Shape shape;
  Strides strides;
  for (int64_t d : order) {
    shape.push_back(x.shape()[d]);
    strides.push_back(x.strides()[d]);
  }
  const Tensor moved = contiguous_copy_if_needed(make_view(x, shape, strides, x.offset()));
  return {moved, length == 0 ? 0 : x.numel() / length, length};
}

// ReduceOp::Mean from the sum rounded to T (kernels/backend.h).
template <typename T>
T mean_of(T sum, int64_t count) {
  return static_cast<T>(static_cast<double>(sum) * (1.0 / static_cast<double>(count)));
}

Shape kept_shape(const Tensor& x, const std::vector<int>& axes) {
  Shape out = x.shape();
  for (int a : axes) out[a] = 1;
  return out;
}

}  // namespace

Tensor CpuBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes) {
  Tensor out = Tensor::empty(kept_shape(x, axes), x.dtype());
  int64_t length = 1;
  for (int a : axes) length *= x.shape()[a];
  if (length == 0) {  // no elements: the sum is 0 (the ops reject an empty mean or max)
    fill(out, 0);
    return out;
  }
  const Rows rows = rows_for(x, axes);
  dispatch(x.dtype(), [&]<typename T>() {
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
    const T* in = rows.data.data<T>();
    T* o = out.data<T>();
    parallel_for(rows.outer, std::max<int64_t>(1, kParallelGrain / rows.length),
                 [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* row = in + r * rows.length;
        if (op != ReduceOp::Max) {
          Acc total = 0;
          for (int64_t i = 0; i < rows.length; ++i) total = wrapping_add<Acc>(total, row[i]);
          const T sum = static_cast<T>(total);
          o[r] = op == ReduceOp::Sum ? sum : mean_of(sum, rows.length);
        } else {
          T best = row[0];
          for (int64_t i = 1; i < rows.length; ++i) {
            if constexpr (std::is_floating_point_v<T>) {
              if (std::isnan(best)) break;  // NaN is the max of anything, as in PyTorch
              if (row[i] > best || std::isnan(row[i])) best = row[i];
            } else {
              best = std::max(best, row[i]);
            }
          }
          o[r] = best;
        }
      }
    });
  });
  return out;
}

Tensor CpuBackend::argmax(const Tensor& x, int axis) {
  Tensor out = Tensor::empty(kept_shape(x, {axis}), DType::Int64);
  const Rows rows = rows_for(x, {axis});
  dispatch(x.dtype(), [&]<typename T>() {
    const T* in = rows.data.data<T>();
    int64_t* o = out.data<int64_t>();
    parallel_for(rows.outer, std::max<int64_t>(1, kParallelGrain / rows.length),
                 [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* row = in + r * rows.length;
        int64_t best = 0;
        for (int64_t i = 1; i < rows.length; ++i) {
          if constexpr (std::is_floating_point_v<T>)
            if (std::isnan(row[best])) break;  // the first NaN wins, as in PyTorch
          if (row[i] > row[best] || (std::is_floating_point_v<T> && row[i] != row[i])) best = i;
        }
        o[r] = best;
      }
    });
  });
  return out;
}

}  // namespace tg
