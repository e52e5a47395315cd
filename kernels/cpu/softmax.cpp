// CPU softmax / log-softmax along any axis, their backwards, and fused cross-entropy. The axis is
// handled by viewing the contiguous input as [outer, n, inner] and striding by `inner` along it.
#include <Eigen/Core>
#include <cmath>

#include "kernels/axis_view.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace tg {

using namespace cpu;

namespace {

// Runs fn(base, stride) for each of the outer * inner lines along the axis, in parallel.
template <typename Fn>
void for_each_line(const AxisView& v, Fn&& fn) {
  parallel_for(v.outer * v.inner, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(v.n, 1)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t line = begin; line < end; ++line)
                   fn((line / v.inner) * v.n * v.inner + line % v.inner, v.inner);
               });
}

}  // namespace

Tensor CpuBackend::softmax(const Tensor& x_in, int axis, bool log) {
  const Tensor x = contiguous_copy_if_needed(x_in);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const AxisView v = axis_view(x.shape(), axis);
  if (x.numel() == 0) return out;
  dispatch_floating(x.dtype(), "softmax", [&]<typename T>() {
    const T* in = x.data<T>();
    T* o = out.data<T>();
    for_each_line(v, [&](int64_t base, int64_t s) {
      // Subtract the maximum so exp never overflows.
      T peak = in[base];
      for (int64_t i = 1; i < v.n; ++i) peak = std::max(peak, in[base + i * s]);
      double total = 0;
      for (int64_t i = 0; i < v.n; ++i) total += std::exp(double(in[base + i * s] - peak));
      if (log) {
        const double log_total = std::log(total);
        for (int64_t i = 0; i < v.n; ++i)
          o[base + i * s] = static_cast<T>(double(in[base + i * s] - peak) - log_total);
      } else {
        for (int64_t i = 0; i < v.n; ++i)
          o[base + i * s] = static_cast<T>(std::exp(double(in[base + i * s] - peak)) / total);
      }
    });
  });
  return out;
}

Tensor CpuBackend::softmax_backward(const Tensor& y_in, const Tensor& dy_in, int axis, bool log) {
  const Tensor y = contiguous_copy_if_needed(y_in), dy = contiguous_copy_if_needed(dy_in);
  Tensor dx = Tensor::empty(y.shape(), y.dtype());
  const AxisView v = axis_view(y.shape(), axis);
  if (y.numel() == 0) return dx;
  dispatch_floating(y.dtype(), "softmax_backward", [&]<typename T>() {
    const T* py = y.data<T>();
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    for_each_line(v, [&](int64_t base, int64_t s) {
      double dot = 0;  // softmax: sum(dy * y);  log-softmax: sum(dy)
      for (int64_t i = 0; i < v.n; ++i)
        dot += log ? double(pdy[base + i * s]) : double(pdy[base + i * s]) * py[base + i * s];
      for (int64_t i = 0; i < v.n; ++i) {
        const int64_t j = base + i * s;
        pdx[j] = log ? static_cast<T>(pdy[j] - std::exp(double(py[j])) * dot)
                     : static_cast<T>(py[j] * (pdy[j] - dot));
      }
    });
  });
  return dx;
}

namespace {
void check_targets(const Tensor& targets, int64_t classes) {
  const int64_t* t = targets.data<int64_t>();
  for (int64_t i = 0; i < targets.numel(); ++i)
    check(t[i] >= 0 && t[i] < classes, "cross_entropy: target ", t[i], " at row ", i,
          " is out of range [0, ", classes, ")");
}
}  // namespace

namespace {
template <typename T>
T row_max(const T* row, int64_t n) {
  T peak = row[0];
#pragma omp simd reduction(max : peak)
  for (int64_t c = 1; c < n; ++c) peak = std::max(peak, row[c]);
  return peak;
}

// One row of each kernel, on Eigen arrays: Eigen's exp is vectorised (a loop calling std::exp
// stays scalar, and made softmax cross-entropy the slowest kernel of a step) and accurate to
// about 1 ulp. TG_ONE_COPY: the serial and threaded branches of parallel_for run the same code.
template <typename T>
using RowArray = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

template <typename T>
TG_ONE_COPY T cross_entropy_row(const T* row_data, int64_t classes, int64_t target,
                                T& shifted_logsumexp) {
  const RowArray<T> row(row_data, classes);
  const T peak = row.maxCoeff();  // subtracted so that exp never overflows
  shifted_logsumexp = std::log((row - peak).exp().sum());
  return shifted_logsumexp - (row_data[target] - peak);
}

template <typename T>
TG_ONE_COPY void cross_entropy_backward_row(const T* row_data, int64_t classes, int64_t target,
                                            T log_total, T grad, T* out) {
  const RowArray<T> row(row_data, classes);
  const T peak = row.maxCoeff();
  // Two subtractions, not one of (peak + log_total): that sum would round at the scale of the
  // logits (an ulp of 6e-5 near 1000) and shift every probability by as much.
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(out, classes) =
      ((row - peak) - log_total).exp() * grad;
  out[target] -= grad;  // minus the one-hot target
}
}  // namespace

// Both kernels work row by row in the logits' own type: each row's arithmetic is independent of
// the thread count.
void CpuBackend::cross_entropy(const Tensor& logits_in, const Tensor& targets_in, Tensor& loss,
                               Tensor& shifted_logsumexp) {
  const Tensor logits = contiguous_copy_if_needed(logits_in);
  const Tensor targets = contiguous_copy_if_needed(targets_in);
  const int64_t rows = logits.size(0), classes = logits.size(1);
  check_targets(targets, classes);
  loss = Tensor::empty({rows}, logits.dtype());
  shifted_logsumexp = Tensor::empty({rows}, logits.dtype());
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<typename T>() {
    const T* x = logits.data<T>();
    const int64_t* t = targets.data<int64_t>();
    T* pl = loss.data<T>();
    T* pshift = shifted_logsumexp.data<T>();
    parallel_for(rows, std::max<int64_t>(1, kParallelGrain / classes), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        pl[r] = cross_entropy_row(x + r * classes, classes, t[r], pshift[r]);
    });
  });
}

Tensor CpuBackend::cross_entropy_backward(const Tensor& logits_in, const Tensor& targets_in,
                                          const Tensor& shifted_logsumexp,
                                          const Tensor& row_grad_in) {
  const Tensor logits = contiguous_copy_if_needed(logits_in);
  const Tensor targets = contiguous_copy_if_needed(targets_in);
  const Tensor row_grad = contiguous_copy_if_needed(row_grad_in);
  const int64_t rows = logits.size(0), classes = logits.size(1);
  Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype());
  dispatch_floating(logits.dtype(), "cross_entropy_backward", [&]<typename T>() {
    const T* x = logits.data<T>();
    const int64_t* t = targets.data<int64_t>();
    const T* shifted = shifted_logsumexp.data<T>();
    const T* g = row_grad.data<T>();
    T* dx = dlogits.data<T>();
    parallel_for(rows, std::max<int64_t>(1, kParallelGrain / classes), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        cross_entropy_backward_row(x + r * classes, classes, t[r], shifted[r], g[r],
                                   dx + r * classes);
    });
  });
  return dlogits;
}

}  // namespace tg
