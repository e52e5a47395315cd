// Split-K: a product with few output tiles and a K of 64 or more, run as K slices side by side;
// and the sum of a batch of products into one output.
//
// A weight gradient x^T @ dy of the nanda MLP is [128, 3830] @ [3830, 512]: four 128 x 128 output
// tiles, so v7 would run four blocks on a GPU of 132 SMs, each looping over all 3830 k, about
// 270 us on one SM each; the attention's per-head weight gradients are four products of one tile
// each over K = 342. Split into slices of k (a multiple of 16, at least 32), each slice of each
// matrix is one entry of a batched product into a float32 workspace [matrices, slices, M, N]
// (entry z is slice z % slices of matrix z / slices, GemmArgs::slices; A's and B's slices are
// strided views, so any version and layout runs them, masks included), and a second kernel adds
// each matrix's slices in order, 0 first, and applies the epilogue (bias, activation,
// pre-activation output) as the versions do: two launches instead of one. The last slice is what
// is left of K (GemmArgs::split_k_total), and every version reads its entry's K (entry_k).
//
// The sum adds fixed slices in a fixed order, so the bits depend only on the arguments (not on
// timing, nor on the GPU: the number of slices aims at a fixed 128 blocks, not at the SM count).
// They differ from the unsplit product's in the last bits, as any other order of the k would.
// Grouped products (GemmArgs::groups) split the same way: the workspace holds every group's
// matrices in order, and the sum writes each to its group's C.
// sgemm_batch_sum is the same two launches with the batch as the slices: every product (of
// every group) into the workspace, then their sum, in batch order, into one C with the
// epilogue: the attention table's input gradient, summed over Q, K, V and the heads.
// The workspace comes from the device's caching allocator, which hands a freed block out again
// in the order of the device's stream (stream.h): the backend calls sgemm() on that stream.
#include <algorithm>
#include <cstdint>

#include "core/tensor.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/sgemm/common.cuh"
#include "kernels/fast_divmod.h"

namespace tg::cuda {

namespace {

using namespace sgemm_detail;

constexpr int kTile = 128;              // v7's block tile, M and N
constexpr int64_t kTargetBlocks = 128;  // about one wave of an H100 / H200 (132 SMs)
constexpr int64_t kMinSliceK = 32;      // two of v7's k steps
// A shorter K is not split: it would not make two slices of kMinSliceK. So the step's
// unembedding (3830 x 128 x 113: 30 blocks, 37 us on the H200 when v5 took its unaligned rows,
// each block's k loop a chain of trips to memory) and its table's Q, K, V (12 products of
// 342 x 128 x 32: 36 blocks, 22 us) run 4 slices of 32, and the unembedding's input gradient
// (3830 x 113 x 128, K = 113: 30 blocks, 36 us) 3 slices of 48, 48 and 17.
constexpr int64_t kMinK = 2 * kMinSliceK;
constexpr int kSliceAlign = 16;         // keeps 16-byte rows (and v7's BK) within a slice

// Slices a thread loads at a time before adding them in order: the weight gradients' 30 slices
// take two trips to memory, not one per slice.
constexpr int kSumLoads = 16;

// How the sum's threads split their element e into (matrix, r = its index in the matrix) and r
// into (row, column): by multiplying (FastDivmod) where every index is below 2^31, as at the
// step's products, else by the 64-bit division, which costs more than the sum's loads.
struct SumIndexing {
  bool fast = false;
  FastDivmod by_elements, by_columns;  // M N and N, when fast
};

SumIndexing sum_indexing(int64_t matrices, const GemmArgs& p) {
  SumIndexing ix;
  const int64_t elements = static_cast<int64_t>(p.M) * p.N;
  ix.fast = elements > 0 && matrices * elements <= INT32_MAX;
  if (ix.fast) {
    ix.by_elements = FastDivmod(elements);
    ix.by_columns = FastDivmod(p.N);
  }
  return ix;
}

// C = the sum of the slices of each product in `partial` ([matrices, slices, M, N], contiguous),
// slice 0 first, through the epilogue when EPI; one thread per element of the products.
template <bool EPI>
__global__ void split_k_sum_kernel(const float* partial, int64_t matrices, int64_t slices,
                                   GemmArgs p, SumIndexing ix) {
  kernel_prologue();
  const int64_t elements = static_cast<int64_t>(p.M) * p.N;
  TG_GRID_STRIDE_LOOP(e, matrices * elements) {
    int64_t matrix, r, m;
    int n;
    if (ix.fast) {
      const auto e32 = static_cast<uint32_t>(e);
      const uint32_t q = ix.by_elements.div(e32), r32 = ix.by_elements.mod(e32, q);
      const uint32_t row = ix.by_columns.div(r32);
      matrix = q;
      r = r32;
      m = row;
      n = static_cast<int>(ix.by_columns.mod(r32, row));
    } else {
      matrix = e / elements;
      r = e % elements;
      m = r / p.N;
      n = static_cast<int>(r % p.N);
    }
    const float* slice = partial + matrix * slices * elements + r;
    float acc = slice[0];
    for (int64_t s0 = 1; s0 < slices; s0 += kSumLoads) {
      float term[kSumLoads];  // loads in flight together; the adds in slice order
#pragma unroll
      for (int u = 0; u < kSumLoads; ++u)
        term[u] = s0 + u < slices ? slice[(s0 + u) * elements] : 0.0f;
#pragma unroll
      for (int u = 0; u < kSumLoads; ++u) {
        if (s0 + u >= slices) break;
        acc += term[u];
      }
    }
    const int64_t at = matrix_offsets(p, matrix).c + m * p.ldc + n;
    store_one<EPI>(p, p.C, EpilogueRows{p.pre, p.residual}, at, n, acc);
  }
}

// How far an operand of `args` (A when `is_a`, else B) moves for k0 more k: along a row-major
// A's columns, a transposed A's rows, a row-major B's rows, a transposed B's columns.
int64_t k_offset(const GemmArgs& a, bool is_a, int64_t k0) {
  if (is_a) return a.trans_a ? k0 * a.lda : k0;
  return a.trans_b ? k0 : k0 * a.ldb;
}

// A float32 workspace of `elements` on the current device, from the caching allocator.
Tensor workspace_for(int64_t elements) {
  int device = 0;
  TG_CUDA_CHECK(cudaGetDevice(&device));
  return Tensor::empty({elements}, DType::Float32, Device::cuda(device));
}

// args' products written plainly into `workspace`, each matrix `stride` elements after the one
// before (group g's from g * batch / groups on): the epilogue waits for their sum.
GemmArgs into_workspace(const GemmArgs& args, const Tensor& workspace, int64_t stride) {
  GemmArgs part = args;
  part.bias = nullptr;
  part.act = Activation::Identity;
  part.pre = nullptr;
  part.residual = nullptr;
  part.mask_c = nullptr;
  part.C = workspace.data<float>();
  part.ldc = args.N;
  part.stride_c = stride;
  for (int g = 0; g < args.groups; ++g)  // each group's matrices, one after another
    part.group_c[g] = g * (args.batch / args.groups) * stride;
  return part;
}

// out's C (ldc, stride_c, groups) = the sum of the `slices` partial products of each of its
// `matrices` in `partial` ([matrices, slices, M, N]), in order, through out's epilogue.
void sum_slices(const Tensor& partial, int64_t matrices, int64_t slices, const GemmArgs& out,
                cudaStream_t stream) {
  const auto run = [&](auto kernel) {
    enqueue_kernel(kernel, grid_for(matrices * out.M * out.N), kBlockThreads, stream,
                   partial.data<float>(), matrices, slices, out, sum_indexing(matrices, out));
    check_launch("split_k_sum");
  };
  if (out.has_epilogue())
    run(split_k_sum_kernel<true>);
  else
    run(split_k_sum_kernel<false>);
}

}  // namespace

int64_t split_k_slice(const GemmArgs& a) {
  if (a.K < kMinK || a.slices != 1 || a.batch < 1) return 0;
  const int64_t blocks = int64_t{ceil_div(a.M, kTile)} * ceil_div(a.N, kTile) * a.batch;
  if (blocks == 0) return 0;  // an empty C: nothing to split
  if (2 * blocks > kTargetBlocks) return 0;  // enough blocks to fill the GPU already
  const int64_t slices = std::min<int64_t>(a.K / kMinSliceK, (kTargetBlocks + blocks - 1) / blocks);
  if (slices < 2) return 0;
  const int64_t per_slice = (a.K + slices - 1) / slices;
  const int64_t slice_k = (per_slice + kSliceAlign - 1) / kSliceAlign * kSliceAlign;
  if (slice_k >= a.K) return 0;
  // One launch holds every (matrix, slice) entry: grid z.
  return a.batch * ((a.K + slice_k - 1) / slice_k) <= kMaxGridY ? slice_k : 0;
}

void sgemm_split_k(const GemmArgs& args, int64_t slice_k, cudaStream_t stream) {
  check(slice_k > 0 && slice_k < args.K && args.slices == 1,
        "sgemm_split_k: slices of ", slice_k, " do not split K = ", args.K);
  check_gemm_groups(args, "sgemm_split_k");
  const int64_t slices = (args.K + slice_k - 1) / slice_k;
  const int64_t matrices = args.batch, elements = static_cast<int64_t>(args.M) * args.N;
  const Tensor workspace = workspace_for(matrices * slices * elements);

  // The slices as products into the workspace, [matrices, slices, M, N].
  GemmArgs part = into_workspace(args, workspace, slices * elements);
  part.K = static_cast<int>(slice_k);
  part.split_k_total = args.K;  // the last slice is the rest
  part.slices = static_cast<int>(slices);
  part.batch = static_cast<int>(matrices * slices);
  part.slice_stride_a = k_offset(args, true, slice_k);
  part.slice_stride_b = k_offset(args, false, slice_k);
  part.slice_stride_c = elements;
  best_sgemm(part).run(part, stream);
  sum_slices(workspace, matrices, slices, args, stream);
}

void sgemm_batch_sum(const GemmArgs& args, cudaStream_t stream) {
  check(args.batch >= 1 && args.slices == 1,
        "sgemm_batch_sum: needs at least one product, got a batch of ", args.batch);
  check_gemm_groups(args, "sgemm_batch_sum");  // before writing group offsets for them
  // The one output, with the epilogue: the sum's arguments.
  GemmArgs sum = args;
  sum.batch = 1;
  sum.groups = 1;
  sum.stride_a = sum.stride_b = sum.stride_c = 0;
  check_gemm_args(sum, "sgemm_batch_sum");
  if (args.M > kMaxRowsPerLaunch)  // as sgemm(): blocks of rows, each summed on its own
    return sgemm_by_rows(args, kMaxRowsPerLaunch, stream, sgemm_batch_sum);
  const int64_t matrices = args.batch, elements = static_cast<int64_t>(args.M) * args.N;
  if (elements == 0) return;
  const Tensor workspace = workspace_for(matrices * elements);

  // The products, into the workspace [batch, M, N], then added in batch order as one matrix's
  // K slices.
  const GemmArgs part = into_workspace(args, workspace, elements);
  check_gemm_args(part, "sgemm_batch_sum");
  best_sgemm(part).run(part, stream);
  sum_slices(workspace, 1, matrices, sum, stream);
}

}  // namespace tg::cuda
