// CUDA elementwise primitives: unary math, binary arithmetic and comparisons over strided
// (possibly broadcast) operands, and masked fill (the CUDA twin of kernels/cpu/elementwise.cpp).
// One thread per output element, its operands' offsets from a StridedIndexer; every formula is
// the CPU's, written with the same types (gelu in double, float exp in float), so both devices
// agree to within the last bits of the math library. The math functions are the global CUDA ones,
// named with :: so that tg::exp and friends (the tensor ops) can never be picked up instead.
// Where every operand of unary or binary is one contiguous run starting 16 bytes aligned, a
// second kernel moves 16 bytes per access instead (Pack): the same formula per element, so the
// same bits; the strided kernels are its reference (test_cuda_runtime compares the two).
#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>

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

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// The precision std::exp and friends compute in on the CPU: float for float, double for double
// and for integers (std::exp(int64_t) is exp(double)).
template <typename T>
using MathT = std::conditional_t<std::is_same_v<T, float>, float, double>;

__device__ inline float math_exp(float x) { return ::expf(x); }
__device__ inline double math_exp(double x) { return ::exp(x); }
__device__ inline float math_log(float x) { return ::logf(x); }
__device__ inline double math_log(double x) { return ::log(x); }
__device__ inline float math_sqrt(float x) { return ::sqrtf(x); }
__device__ inline double math_sqrt(double x) { return ::sqrt(x); }
__device__ inline float math_tanh(float x) { return ::tanhf(x); }
__device__ inline double math_tanh(double x) { return ::tanh(x); }

template <typename T>
__device__ T apply_unary(UnaryOp op, T x, double param) {
  switch (op) {
    case UnaryOp::Neg: return wrapping_neg(x);
    case UnaryOp::Exp: return static_cast<T>(math_exp(static_cast<MathT<T>>(x)));
    case UnaryOp::Log: return static_cast<T>(math_log(static_cast<MathT<T>>(x)));
    case UnaryOp::Sqrt: return static_cast<T>(math_sqrt(static_cast<MathT<T>>(x)));
    case UnaryOp::Tanh: return static_cast<T>(math_tanh(static_cast<MathT<T>>(x)));
    case UnaryOp::Relu: return x < 0 ? T(0) : x;  // NaN stays NaN
    case UnaryOp::Step: return x <= 0 ? T(0) : T(1);  // NaN passes, as in PyTorch
    case UnaryOp::Gelu: {
      const double xd = static_cast<double>(x);
      return static_cast<T>(0.5 * xd * (1.0 + ::erf(xd * kInvSqrt2)));
    }
    case UnaryOp::GeluGrad: {
      const double xd = static_cast<double>(x);
      const double cdf = 0.5 * (1.0 + ::erf(xd * kInvSqrt2));
      const double pdf = kInvSqrt2Pi * ::exp(-0.5 * xd * xd);
      return static_cast<T>(cdf + xd * pdf);
    }
    case UnaryOp::PowScalar: return static_cast<T>(::pow(static_cast<double>(x), param));
    case UnaryOp::Scale: return static_cast<T>(static_cast<double>(x) * param);
  }
  return x;
}

template <typename T>
__device__ T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return wrapping_add(a, b);
    case BinaryOp::Sub: return wrapping_sub(a, b);
    case BinaryOp::Mul: return wrapping_mul(a, b);
    case BinaryOp::Div: return wrapping_div(a, b);  // integer divisors were checked on the host
    case BinaryOp::Eq: return static_cast<T>(a == b);
    case BinaryOp::Ne: return static_cast<T>(a != b);
    case BinaryOp::Lt: return static_cast<T>(a < b);
    case BinaryOp::Le: return static_cast<T>(a <= b);
    case BinaryOp::Gt: return static_cast<T>(a > b);
    case BinaryOp::Ge: return static_cast<T>(a >= b);
  }
  return a;
}

// Operand 0 is the input, operand 1 the (contiguous) output.
template <typename T>
__global__ void unary_kernel(UnaryOp op, const T* in, T* out, int64_t n, StridedIndexer<2> ix,
                             double param) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) {
    int64_t off[2];
    ix.offsets(i, off);
    out[off[1]] = apply_unary<T>(op, in[off[0]], param);
  }
}

// Operands a, b, out.
template <typename T>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n,
                              StridedIndexer<3> ix) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) {
    int64_t off[3];
    ix.offsets(i, off);
    out[off[2]] = apply_binary<T>(op, a[off[0]], b[off[1]]);
  }
}

// 16 bytes of T: what one access of the contiguous kernels moves (4 floats, 2 doubles or int64s).
template <typename T>
struct alignas(16) Pack {
  static constexpr int size = 16 / static_cast<int>(sizeof(T));
  T v[size];
};

// Whether every operand of the indexer is one run of stride 1 (make_indexer merges a contiguous
// tensor's axes into one) at a 16-byte aligned address.
template <int N>
bool contiguous_aligned(const StridedIndexer<N>& ix, const std::array<const void*, N>& data) {
  if (ix.ndim != 1) return false;
  for (int k = 0; k < N; ++k)
    if (ix.strides[k][0] != 1 || reinterpret_cast<uintptr_t>(data[k]) % 16 != 0) return false;
  return true;
}

// unary_kernel on contiguous, aligned operands: a Pack per thread and step, then the n % size
// elements past the last whole Pack one at a time.
template <typename T>
__global__ void unary_contiguous_kernel(UnaryOp op, const T* in, T* out, int64_t n,
                                        double param) {
  kernel_prologue();
  constexpr int V = Pack<T>::size;
  const int64_t packs = n / V;
  TG_GRID_STRIDE_LOOP(p, packs) {
    const Pack<T> x = reinterpret_cast<const Pack<T>*>(in)[p];
    Pack<T> y;
#pragma unroll
    for (int e = 0; e < V; ++e) y.v[e] = apply_unary<T>(op, x.v[e], param);
    reinterpret_cast<Pack<T>*>(out)[p] = y;
  }
  TG_GRID_STRIDE_LOOP(i, n - packs * V) {
    const int64_t at = packs * V + i;
    out[at] = apply_unary<T>(op, in[at], param);
  }
}

// binary_kernel on contiguous, aligned operands, as unary_contiguous_kernel.
template <typename T>
__global__ void binary_contiguous_kernel(BinaryOp op, const T* a, const T* b, T* out,
                                         int64_t n) {
  kernel_prologue();
  constexpr int V = Pack<T>::size;
  const int64_t packs = n / V;
  TG_GRID_STRIDE_LOOP(p, packs) {
    const Pack<T> x = reinterpret_cast<const Pack<T>*>(a)[p];
    const Pack<T> y = reinterpret_cast<const Pack<T>*>(b)[p];
    Pack<T> z;
#pragma unroll
    for (int e = 0; e < V; ++e) z.v[e] = apply_binary<T>(op, x.v[e], y.v[e]);
    reinterpret_cast<Pack<T>*>(out)[p] = z;
  }
  TG_GRID_STRIDE_LOOP(i, n - packs * V) {
    const int64_t at = packs * V + i;
    out[at] = apply_binary<T>(op, a[at], b[at]);
  }
}

// Threads for the contiguous kernels: one per Pack (grid_for caps the grid).
template <typename T>
unsigned grid_for_packs(int64_t n) {
  return grid_for(std::max<int64_t>(1, n / Pack<T>::size));
}

// The smallest row-major index i with divisor[i] == 0 goes to *first_zero (left at its initial
// UINT64_MAX when there is none).
__global__ void find_zero_kernel(const int64_t* divisor, int64_t n, StridedIndexer<1> ix,
                                 unsigned long long* first_zero) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) {
    int64_t off[1];
    ix.offsets(i, off);
    if (divisor[off[0]] == 0) atomicMin(first_zero, static_cast<unsigned long long>(i));
  }
}

// Operands x, mask, out.
template <typename T, typename M>
__global__ void masked_fill_kernel(const T* x, const M* mask, T* out, int64_t n,
                                   StridedIndexer<3> ix, T fill) {
  kernel_prologue();
  TG_GRID_STRIDE_LOOP(i, n) {
    int64_t off[3];
    ix.offsets(i, off);
    out[off[2]] = mask[off[1]] != M(0) ? fill : x[off[0]];
  }
}

}  // namespace

Tensor CudaBackend::unary(UnaryOp op, const Tensor& x, double param) {
  check_on(x, device(), "unary", "input");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device());
  const int64_t n = x.numel();
  if (n == 0) return out;
  const auto ix = make_indexer<2>(x.shape(), {x.strides(), out.strides()}, "unary");
  DeviceGuard guard(index_);
  cudaStream_t stream = current_stream(index_);
  dispatch(x.dtype(), [&]<typename T>() {
    if (contiguous_aligned<2>(ix, {x.data<T>(), out.data<T>()}))
      launch(unary_contiguous_kernel<T>, grid_for_packs<T>(n), kBlockThreads, stream, op,
             x.data<T>(), out.data<T>(), n, param);
    else
      launch(unary_kernel<T>, grid_for(n), kBlockThreads, stream, op, x.data<T>(),
             out.data<T>(), n, ix, param);
  });
  return out;
}

Tensor CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  check(a.shape() == b.shape(), "binary: operands ", shape_str(a.shape()), " and ",
        shape_str(b.shape()), " are not expanded to one shape");
  check(a.dtype() == b.dtype(), "binary: operands are ", dtype_name(a.dtype()), " and ",
        dtype_name(b.dtype()));
  check_on(a, device(), "binary", "first operand");
  check_on(b, device(), "binary", "second operand");
  Tensor out = Tensor::empty(a.shape(), a.dtype(), device());
  const int64_t n = a.numel();
  if (n == 0) return out;
  DeviceGuard guard(index_);
  cudaStream_t stream = current_stream(index_);
  // Not while capturing a graph: no flag can come back then (the eager run checked the divisor).
  if (a.dtype() == DType::Int64 && op == BinaryOp::Div && !is_capturing(index_)) {
    // As the CPU: an integer division by zero is an error naming the first zero divisor, found
    // before the division runs.
    const auto zix = make_indexer<1>(b.shape(), {b.strides()}, "div");
    const Tensor flag = Tensor::empty({1}, DType::Int64, device());
    TG_CUDA_CHECK(cudaMemsetAsync(flag.raw_data(), 0xff, sizeof(int64_t), stream));
    launch(find_zero_kernel, grid_for(n), kBlockThreads, stream, b.data<int64_t>(), n, zix,
           static_cast<unsigned long long*>(flag.raw_data()));
    unsigned long long first_zero = 0;
    copy_to_host(flag, &first_zero);  // waits for the stream
    check(first_zero == ~0ull, "div: integer division by zero (element ", first_zero,
          " of the divisor)");
  }
  const auto ix = make_indexer<3>(a.shape(), {a.strides(), b.strides(), out.strides()}, "binary");
  dispatch(a.dtype(), [&]<typename T>() {
    if (contiguous_aligned<3>(ix, {a.data<T>(), b.data<T>(), out.data<T>()}))
      launch(binary_contiguous_kernel<T>, grid_for_packs<T>(n), kBlockThreads, stream, op,
             a.data<T>(), b.data<T>(), out.data<T>(), n);
    else
      launch(binary_kernel<T>, grid_for(n), kBlockThreads, stream, op, a.data<T>(), b.data<T>(),
             out.data<T>(), n, ix);
  });
  return out;
}

Tensor CudaBackend::masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check(x.shape() == mask.shape(), "masked_fill: mask ", shape_str(mask.shape()),
        " is not expanded to x ", shape_str(x.shape()));
  check_on(x, device(), "masked_fill", "x");
  check_on(mask, device(), "masked_fill", "mask");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device());
  const int64_t n = x.numel();
  if (n == 0) return out;
  const auto ix =
      make_indexer<3>(x.shape(), {x.strides(), mask.strides(), out.strides()}, "masked_fill");
  DeviceGuard guard(index_);
  cudaStream_t stream = current_stream(index_);
  dispatch(x.dtype(), [&]<typename T>() {
    dispatch(mask.dtype(), [&]<typename M>() {
      launch(masked_fill_kernel<T, M>, grid_for(n), kBlockThreads, stream, x.data<T>(),
             mask.data<M>(), out.data<T>(), n, ix, static_cast<T>(value));
    });
  });
  return out;
}

}  // namespace tg::cuda
