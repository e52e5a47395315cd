// SGEMM v1, naive: one thread per output element, each reading a whole row of A and column of B
// from global memory.
//
// A 32 x 32 block of threads covers a 32 x 32 tile of C, with threadIdx.x running down the rows
// (m) of C. The 32 threads of a warp therefore hold 32 different rows: their reads of B and their
// writes of C land 32 rows apart, so every access of the warp is a separate memory transaction.
// Each element of A and B is read from global memory N and M times over (caches catch some).
// This is the baseline every later version is measured against. v2 fixes only the mapping.
// As the plainest version it is also the reference for the operand masks (sgemm.h), which it
// applies element by element as it reads A and B.
#include "kernels/cuda/sgemm/common.cuh"
#include "kernels/cuda/sgemm/versions.h"

namespace tg::cuda {
namespace {

using namespace sgemm_detail;

constexpr int kTile = 32;

template <bool TA, bool TB, bool MASK>
__global__ void __launch_bounds__(kTile * kTile) naive_kernel(GemmArgs p) {
  kernel_prologue();
  const int K = entry_k(p);  // this entry's K: its slice's, under split-K
  const float *A, *B, *mask_a, *mask_b;
  float* C;
  select_batch(p, A, B, C);
  select_batch_masks(p, mask_a, mask_b);
  const int m = blockIdx.x * kTile + threadIdx.x;  // consecutive threads: consecutive rows
  const int n = blockIdx.y * kTile + threadIdx.y;
  if (m >= p.M || n >= p.N) return;
  float acc = 0.0f;
  for (int k = 0; k < K; ++k)
    acc += masked_element<TA, MASK>(A, mask_a, p.lda, m, k) *
           masked_element<TB, MASK>(B, mask_b, p.ldb, k, n);
  C[static_cast<int64_t>(m) * p.ldc + n] = acc;
}

// This version alone puts M on grid x and N on grid y, with a 2-D block: the mapping is the point.
void run(const GemmArgs& args, cudaStream_t stream) {
  with_transposes(args, [&](auto ta, auto tb) {
    with_mask(args, [&](auto mask) {
      launch("v1_naive",
             naive_kernel<decltype(ta)::value, decltype(tb)::value, decltype(mask)::value>,
             dim3(ceil_div(args.M, kTile), ceil_div(args.N, kTile)), dim3(kTile, kTile), args,
             stream);
    });
  });
}

// No epilogue here: v5 and v7 implement it. Masks, yes.
bool supports(const GemmArgs& a) { return !a.has_epilogue() && ceil_div(a.N, kTile) <= kMaxGridY; }

}  // namespace

SgemmVersion sgemm_v1_naive() {
  return {1, "naive", "one thread per element of C, reading A and B straight from global memory",
          run, supports};
}

}  // namespace tg::cuda
