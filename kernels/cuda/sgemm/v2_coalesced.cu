// SGEMM v2, global-memory coalescing: the same one-thread-per-element kernel as v1, with the
// thread-to-element mapping turned around.
//
// A 1-D block of 1024 threads covers a 32 x 32 tile of C, and consecutive threads now take
// consecutive columns (n) of one row. The 32 threads of a warp read 32 neighbouring elements of a
// row of B (one 128-byte transaction instead of 32), all read the same element of A (a broadcast),
// and write 32 neighbouring elements of C. Same arithmetic, same number of loads; far fewer memory
// transactions. (With trans_b, B's row is strided in memory again: v3 fixes that by staging tiles.)
#include "kernels/cuda/sgemm/common.cuh"
#include "kernels/cuda/sgemm/versions.h"

namespace tg::cuda {
namespace {

using namespace sgemm_detail;

constexpr int kTile = 32;

template <bool TA, bool TB>
__global__ void __launch_bounds__(kTile * kTile) coalesced_kernel(GemmArgs p) {
  kernel_prologue();
  const int K = entry_k(p);  // this entry's K: its slice's, under split-K
  const float *A, *B;
  float* C;
  select_batch(p, A, B, C);
  const int m = blockIdx.y * kTile + threadIdx.x / kTile;
  const int n = blockIdx.x * kTile + threadIdx.x % kTile;  // consecutive threads: consecutive n
  if (m >= p.M || n >= p.N) return;
  float acc = 0.0f;
  for (int k = 0; k < K; ++k)
    acc += element<TA>(A, p.lda, m, k) * element<TB>(B, p.ldb, k, n);
  C[static_cast<int64_t>(m) * p.ldc + n] = acc;
}

void run(const GemmArgs& args, cudaStream_t stream) {
  with_transposes(args, [&](auto ta, auto tb) {
    launch("v2_coalesced", coalesced_kernel<decltype(ta)::value, decltype(tb)::value>,
           dim3(ceil_div(args.N, kTile), ceil_div(args.M, kTile)), dim3(kTile * kTile), args,
           stream);
  });
}

// No epilogue and no masks here: v5 and v7 implement them.
bool supports(const GemmArgs& a) {
  return !a.has_epilogue() && !a.has_mask() && grid_fits(a, kTile);
}

}  // namespace

SgemmVersion sgemm_v2_coalesced() {
  return {2, "coalesced",
          "consecutive threads take consecutive columns of C: coalesced reads of B, writes of C",
          run, supports};
}

}  // namespace tg::cuda
