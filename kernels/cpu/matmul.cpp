// CPU matmul: Eigen's GEMM over the engine's own buffers (Eigen::Map, no copies), one call per
// batch matrix. A row-major view maps as is and a transposed view maps as column-major, so the
// transposes of backward cost nothing; any other layout is copied contiguous first.
#include <Eigen/Core>
#include <exception>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "kernels/matrix_layout.h"

namespace tg {

using namespace cpu;

namespace {

template <typename T, int Order>
using MatrixMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>, 0,
                             Eigen::OuterStride<>>;

template <typename T>
void gemm(const T* a, MatrixLayout la, int64_t lda, const T* b, MatrixLayout lb, int64_t ldb, T* c,
          int64_t ldc, int64_t m, int64_t k, int64_t n) {
  Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
             Eigen::OuterStride<>>
      out(c, m, n, Eigen::OuterStride<>(ldc));
  if (k == 0) {
    out.setZero();
    return;
  }
  auto multiply = [&](const auto& A) {
    if (lb == MatrixLayout::RowMajor)
      out.noalias() = A * MatrixMap<T, Eigen::RowMajor>(b, k, n, Eigen::OuterStride<>(ldb));
    else
      out.noalias() = A * MatrixMap<T, Eigen::ColMajor>(b, k, n, Eigen::OuterStride<>(ldb));
  };
  if (la == MatrixLayout::RowMajor)
    multiply(MatrixMap<T, Eigen::RowMajor>(a, m, k, Eigen::OuterStride<>(lda)));
  else
    multiply(MatrixMap<T, Eigen::ColMajor>(a, m, k, Eigen::OuterStride<>(lda)));
}

}  // namespace

void CpuBackend::matmul_into(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  Tensor a = a_in, b = b_in;
  int64_t lda = 0, ldb = 0, ldc = 0;
  MatrixLayout la = matrix_layout(a, lda), lb = matrix_layout(b, ldb);
  if (la == MatrixLayout::Other) la = matrix_layout(a = contiguous_copy_if_needed(a), lda);
  if (lb == MatrixLayout::Other) lb = matrix_layout(b = contiguous_copy_if_needed(b), ldb);
  check(matrix_layout(out, ldc) == MatrixLayout::RowMajor,
        "matmul: the output's rows must be contiguous, got strides ", shape_str(out.strides()));

  const int64_t m = a.shape()[a.dim() - 2], k = a.shape()[a.dim() - 1], n = b.shape()[b.dim() - 1];
  const int64_t batches = m * n == 0 ? 0 : out.numel() / (m * n);
  dispatch_floating(a.dtype(), "matmul", [&]<typename T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = out.data<T>();
    // Several matrices: one per thread (a head's [342, 128] @ [128, 32] splits poorly across
    // threads). One matrix: Eigen threads the GEMM itself (it runs single-threaded when already
    // inside a parallel region, so threads never nest).
    parallel_for(batches, 2, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        gemm<T>(pa + batch_offset(a, i), la, lda, pb + batch_offset(b, i), lb, ldb,
                pc + batch_offset(out, i), ldc, m, k, n);
    });
  });
}

// With two or more threads, each product gets a thread of its own (Eigen runs single-threaded
// inside a parallel region). Eigen's threading splits one GEMM's output, which scales poorly
// for a weight gradient x^T @ dy: a small [in, out] result with a long K = batch (101 GFLOP/s on
// 2 threads for nanda's [128, 3830] @ [3830, 512], against ~80 on one thread alone).
void CpuBackend::matmul_pair(const Tensor& a1, const Tensor& b1, Tensor& c1, const Tensor& a2,
                             const Tensor& b2, Tensor& c2) {
  if (omp_get_max_threads() < 2 || omp_in_parallel()) {
    c1 = matmul(a1, b1);
    c2 = matmul(a2, b2);
    return;
  }
  // Exceptions cannot leave an OpenMP region: each section keeps its own and the first is
  // rethrown after the region.
  std::exception_ptr error[2];
#pragma omp parallel sections num_threads(2)
  {
#pragma omp section
    try {
      c1 = matmul(a1, b1);
    } catch (...) {
      error[0] = std::current_exception();
    }
#pragma omp section
    try {
      c2 = matmul(a2, b2);
    } catch (...) {
      error[1] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : error)
    if (e) std::rethrow_exception(e);
}

}  // namespace tg
