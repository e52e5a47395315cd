// Split-K: a product with few output tiles and a long K, run as K slices side by side.
//
// A weight gradient x^T @ dy of the nanda MLP is [128, 3830] @ [3830, 512]: four 128 x 128 output
// tiles, so v7 would run four blocks on a GPU of 132 SMs, each looping over all 3830 k, about
// 270 us on one SM each. Split into slices of k (a multiple of 16, at least 128), each slice is
// one matrix of a batched product into a float32 workspace [slices, M, N] (A's and B's slices
// are strided views of them, so any version and layout runs them, masks included), and a second
// kernel adds the slices in order, 0 first, and applies the epilogue (bias, activation,
// pre-activation output) as the versions do. The last slice is shorter unless the slice size
// divides K, so it is a launch of its own: three launches instead of one.
//
// The sum is a fixed tree over fixed slices, so the bits depend only on the arguments (not on
// timing, nor on the GPU: the number of slices aims at a fixed 128 blocks, not at the SM count).
// They differ from the unsplit product's in the last bits, as any other order of the k would.
// The workspace comes from the device's caching allocator, which hands a freed block out again
// in the order of the device's stream (stream.h): the backend calls sgemm() on that stream.
#include <algorithm>
#include <cstdint>

#include "core/tensor.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/sgemm/common.cuh"

namespace tg::cuda {

namespace {

using namespace sgemm_detail;

constexpr int64_t kTile = 128;          // v7's block tile, M and N
constexpr int64_t kTargetBlocks = 128;  // about one wave of an H100 / H200 (132 SMs)
constexpr int64_t kMinSliceK = 128;     // below this a slice is mostly its prologue
constexpr int kSliceAlign = 16;         // keeps 16-byte rows (and v7's BK) within a slice

// C = sum of the slices of `partial` (each M x N, contiguous), slice 0 first, through the
// epilogue when EPI; one thread per element of C.
template <bool EPI>
__global__ void split_k_sum_kernel(const float* partial, int64_t slices, GemmArgs p) {
  kernel_prologue();
  const int64_t elements = static_cast<int64_t>(p.M) * p.N;
  TG_GRID_STRIDE_LOOP(e, elements) {
    float acc = partial[e];
    for (int64_t s = 1; s < slices; ++s) acc += partial[s * elements + e];
    const int64_t m = e / p.N;
    const int n = static_cast<int>(e % p.N);
    store_one<EPI>(p, p.C, p.pre, m * p.ldc + n, n, acc);
  }
}

// Moves an operand of `args` (A when `is_a`, else B) to the k offset `k0`: along a row-major A's
// columns, a transposed A's rows, a row-major B's rows, a transposed B's columns.
int64_t k_offset(const GemmArgs& a, bool is_a, int64_t k0) {
  if (is_a) return a.trans_a ? k0 * a.lda : k0;
  return a.trans_b ? k0 : k0 * a.ldb;
}

}  // namespace

int64_t split_k_slice(const GemmArgs& a) {
  if (a.batch != 1 || a.K < 2 * kMinSliceK) return 0;
  const int64_t tiles = ceil_div(a.M, kTile) * ceil_div(a.N, kTile);
  if (2 * tiles > kTargetBlocks) return 0;  // enough blocks to fill the GPU already
  const int64_t slices = std::min<int64_t>(a.K / kMinSliceK, (kTargetBlocks + tiles - 1) / tiles);
  if (slices < 2) return 0;
  const int64_t per_slice = (a.K + slices - 1) / slices;
  const int64_t slice_k = (per_slice + kSliceAlign - 1) / kSliceAlign * kSliceAlign;
  return slice_k < a.K ? slice_k : 0;
}

void sgemm_split_k(const GemmArgs& args, int64_t slice_k, cudaStream_t stream) {
  check(slice_k > 0 && slice_k < args.K && args.batch == 1,
        "sgemm_split_k: slices of ", slice_k, " do not split K = ", args.K, " of a single product");
  const int64_t slices = (args.K + slice_k - 1) / slice_k;
  const int64_t elements = static_cast<int64_t>(args.M) * args.N;
  int device = 0;
  TG_CUDA_CHECK(cudaGetDevice(&device));
  const Tensor workspace = Tensor::empty({slices * elements}, DType::Float32, Device::cuda(device));

  // The slices as products into the workspace: the epilogue waits for their sum.
  GemmArgs part = args;
  part.bias = nullptr;
  part.act = Activation::Identity;
  part.pre = nullptr;
  part.C = workspace.data<float>();
  part.ldc = args.N;
  part.stride_c = elements;
  const int64_t full = args.K % slice_k == 0 ? slices : slices - 1;  // slices of slice_k each
  part.K = static_cast<int>(slice_k);
  part.batch = static_cast<int>(full);
  part.stride_a = k_offset(args, true, slice_k);
  part.stride_b = k_offset(args, false, slice_k);
  best_sgemm(part).run(part, stream);
  if (full < slices) {  // the shorter last slice
    GemmArgs last = part;
    last.batch = 1;
    last.K = static_cast<int>(args.K - full * slice_k);
    last.A = args.A + k_offset(args, true, full * slice_k);
    last.B = args.B + k_offset(args, false, full * slice_k);
    if (args.mask_a) last.mask_a = args.mask_a + k_offset(args, true, full * slice_k);
    if (args.mask_b) last.mask_b = args.mask_b + k_offset(args, false, full * slice_k);
    last.C = part.C + full * elements;
    last.stride_a = last.stride_b = last.stride_c = 0;
    best_sgemm(last).run(last, stream);
  }

  GemmArgs sum = args;  // C, ldc and the epilogue of the whole product
  const auto run = [&](auto kernel) {
    enqueue_kernel(kernel, grid_for(elements), kBlockThreads, stream, workspace.data<float>(),
                   slices, sum);
    check_launch("split_k_sum");
  };
  if (args.has_epilogue())
    run(split_k_sum_kernel<true>);
  else
    run(split_k_sum_kernel<false>);
}

}  // namespace tg::cuda
