// SGEMM over raw device pointers: the family of numbered versions (v1 naive ... v7 warptiling,
// v8 to v10 on tensor cores), the registry that lists them in order, and best_sgemm(), which
// picks the one the engine uses.
//
// Convention (row-major, as the rest of tinygrok): C[M, N] = op(A)[M, K] @ op(B)[K, N].
//   A: trans_a false -> A is stored [M, K], element (m, k) at A[m * lda + k]
//      trans_a true  -> A is stored [K, M] and used transposed, (m, k) at A[k * lda + m]
//   B: trans_b false -> B is stored [K, N], element (k, n) at B[k * ldb + n]
//      trans_b true  -> B is stored [N, K] and used transposed, (k, n) at B[n * ldb + k]
//   C: always stored [M, N], element (m, n) at C[m * ldc + n]; C is only written, never read, and
//      nothing outside the M x N elements of each batch matrix is touched.
// Batched: matrix b of a batch starts at A + b * stride_a (likewise B, C); a stride of 0 broadcasts
// one matrix to the whole batch (never for C). Any M, N, K >= 0 is valid; K = 0 gives C = 0.
// Grouped: products of one shape and layout whose operands lie in separate buffers (the
// attention's W_Q, W_K and W_V times the same rows) in one launch. The batch is `groups` runs of
// batch / groups matrices; group g's matrices start group_a[g], group_b[g] and group_c[g]
// elements past A, B and C (group 0's offsets are 0), then step by the batch strides. The
// groups' outputs must not overlap. Without an epilogue's pre or residual, and without masks.
// Optional epilogue (a linear layer's bias and activation), applied as C is stored: with
// v = acc + bias[n] (+ 0 without a bias, as the unfused bias_activation adds, so -0 becomes +0),
// C = act(v), and pre (same ldc and stride_c as C) = v when pre is not null; with a residual
// (laid out as C, and read only), C = act(v) + residual, as a residual block's x + f(x) adds it.
// The bias is one [N] vector for every batch matrix. Last, with mask_c (laid out as C, read
// only), C stores 0 where mask_c's element is <= 0 and keeps the value elsewhere (a NaN mask
// keeps it): the ReLU backward of the layer below, whose output mask_c is, applied to the
// gradient this product makes for it (cuBLASLt's DRELU epilogue). The epilogue's arithmetic is
// the unfused kernels' (kernels/cuda/linear_epilogue.cu, then an add, then the ReLU's
// activation_backward, a select), so fused and unfused results agree bit for bit. Without it
// (no bias, Identity, no pre, no residual, no mask_c) every version runs its plain kernel.
// Optional masks on the operands (a ReLU layer's backward reading dy through its mask, so that
// dpre = dy where y is not <= 0 is never written): mask_a, laid out exactly as A (lda, trans_a,
// stride_a), reads element (m, k) of A as 0 where mask_a's element there is <= 0 and keeps it
// elsewhere (a NaN mask keeps it, as the unfused activation_backward and PyTorch do); mask_b
// likewise for B. The product is then the plain product of the masked operands: in v5 and v7,
// which mask as they stage tiles in shared memory, bit for bit what the same version gives for
// the unfused dpre; v1 masks inside its multiply-add, where a compiler may round the two
// differently (fused or separate multiply and add). Versions that do not implement masks decline
// them in supports(): v1 (the reference), v5, v7 and the tensor-core versions (v8 to v10) do.
//
// This header needs no CUDA include path: cudaStream_t is declared the way the runtime does.
// All launches are asynchronous on the given stream; a launch error throws tg::Error naming the
// kernel and CUDA's error string.
#pragma once

#include <cstdint>
#include <vector>

#include "core/activation.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;  // identical to the CUDA runtime's own typedef

namespace tg::cuda {

struct GemmArgs {
  int M = 0, N = 0, K = 0;
  const float* A = nullptr;
  int64_t lda = 0;
  bool trans_a = false;
  const float* B = nullptr;
  int64_t ldb = 0;
  bool trans_b = false;
  float* C = nullptr;
  int64_t ldc = 0;
  int batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  // The epilogue (see above): off unless one of these is set.
  const float* bias = nullptr;  // [N] or null
  Activation act = Activation::Identity;
  float* pre = nullptr;  // pre-activation output laid out as C, or null
  const float* residual = nullptr;  // added after the activation, laid out as C, or null
  // The operand masks (see above): off unless set.
  const float* mask_a = nullptr;  // laid out as A, or null
  const float* mask_b = nullptr;  // laid out as B, or null
  // Groups (see above; 1: none).
  static constexpr int kMaxGroups = 3;
  int groups = 1;
  int64_t group_a[kMaxGroups] = {}, group_b[kMaxGroups] = {}, group_c[kMaxGroups] = {};
  // K slices (split_k.cu sets them; 1: none): batch entry z is slice z % slices of matrix
  // z / slices, which starts slice_stride_a, slice_stride_b and slice_stride_c further on and
  // has K k, the last one what is left of split_k_total.
  int slices = 1;
  int64_t slice_stride_a = 0, slice_stride_b = 0, slice_stride_c = 0;
  int64_t split_k_total = 0;
  // The epilogue's output mask (see above): C stores 0 where this is <= 0; laid out as C, or
  // null. (Last, so that the other fields keep their offsets in the kernels' parameters.)
  const float* mask_c = nullptr;

  bool has_epilogue() const {
    return bias || act != Activation::Identity || pre || residual || mask_c;
  }
  bool has_mask() const { return mask_a || mask_b; }
};

using SgemmFn = void (*)(const GemmArgs&, cudaStream_t);

struct SgemmVersion {
  int number;
  const char* name;          // "warptiling": the file is kernels/cuda/sgemm/v7_warptiling.cu
  const char* what_changed;  // one line: what this version does differently from the one before
  SgemmFn run;
  bool (*supports)(const GemmArgs&);  // false for arguments this version cannot do (alignment,
                                      // an epilogue or masks it does not implement)
  bool tf32 = false;  // true: rounds inputs to TF32, not comparable with float32 at 1e-5
  // false until a GPU run has timed it (docs/benchmarks.md): best_sgemm() passes it over unless
  // TG_CUDA_SGEMM names it, so the engine's default is always a version a GPU has timed.
  bool measured = true;
};

// Every version, in order of number. Tests and benchmarks iterate this list.
const std::vector<SgemmVersion>& sgemm_versions();

// The version the engine uses for these arguments: the one forced (below) if it accepts them,
// else the fastest measured version whose supports() accepts them, float32 unless TF32 is
// allowed (below). v5 accepts everything up to kMaxRowsPerLaunch rows (the epilogue and masks
// included), so there is always one there.
const SgemmVersion& best_sgemm(const GemmArgs& args);

// The version best_sgemm() takes whenever it accepts the arguments, whether measured or TF32 or
// not (forcing a TF32 version allows TF32 for it): 0, none, unless the environment has
// TG_CUDA_SGEMM=<number> or set_forced_sgemm(number) was called. For timing one version in the
// whole engine (scripts/device_check.sh's step variants). A number that is no version throws
// tg::Error naming the valid ones.
int forced_sgemm();
void set_forced_sgemm(int number);

// Whether best_sgemm() may pick a TF32 version (tensor cores; inputs rounded to 10 mantissa bits,
// about 1e-3 relative error): off unless the environment has TG_CUDA_TF32=1 or set_allow_tf32(true)
// was called, as PyTorch's torch.backends.cuda.matmul.allow_tf32.
bool allow_tf32();
void set_allow_tf32(bool allow);

// Throws tg::Error unless the arguments describe a valid product: sizes >= 0, leading dimensions
// at least the stored row length, non-null pointers where elements exist, C not broadcast, pre
// not C, no mask that is C or pre.
void check_gemm_args(const GemmArgs& args, const char* who);
// The part of check_gemm_args about groups: 1 to kMaxGroups of them, dividing the batch.
void check_gemm_groups(const GemmArgs& args, const char* who);

// C = A @ B with best_sgemm(args), or as K slices (split_k_slice, below) when the product has few
// output tiles and a long K; checks the arguments first. A product of more than
// kMaxRowsPerLaunch rows runs as blocks of that many rows (sgemm_by_rows, below). sgemm,
// sgemm_batch_sum and sgemm_split_k take the device's backend stream (current_stream,
// kernels/cuda/stream.h): their workspace goes back to the caching allocator while its kernels
// may still be queued, which is safe only because the allocator's next user queues behind them
// on that same stream.
void sgemm(const GemmArgs& args, cudaStream_t stream);

// Every version but v1 puts M tiles on grid y, at most 65535 of them: 32 rows a tile (the
// smallest, v2's and v3's) makes every version fit, and keeps each block's first row 16-byte
// aligned wherever row 0 is.
constexpr int kMaxRowsPerLaunch = 65535 * 32;
// The rows [first, first + rows) of the product: M = rows, and A and its mask (row `first` of
// op(A)), C, pre and the residual moved to that row; B, the bias and the batch strides stay.
GemmArgs gemm_rows(const GemmArgs& args, int first, int rows);
// run(args) (sgemm, or sgemm_batch_sum) as run(gemm_rows(args, first, rows_per_launch)) for
// first = 0, rows_per_launch, ...: each element of C the same bits as one launch gives whenever
// each block picks the same version and split (as for rows_per_launch a multiple of 4 and no
// split-K).
void sgemm_by_rows(const GemmArgs& args, int rows_per_launch, cudaStream_t stream,
                   SgemmFn run = sgemm);

// Split-K (split_k.cu): the size of the K slices sgemm() runs side by side for these arguments,
// a multiple of 16, or 0 when it runs the product whole (a K under 64, or output tiles enough to
// fill the GPU). Depends on the arguments only, so the bits do too.
int64_t split_k_slice(const GemmArgs& args);
// C = the sum over the batch (all groups', group 0's first) of A_i @ B_i, then the epilogue: one
// output [M, N] at C with ldc (stride_c unused), where the batch strides and group offsets
// place only A's and B's matrices. The products go into a float32 workspace, one launch, and a
// second adds them in batch order, as split-K adds its slices (the input gradient of rows that
// several products read). No product is split over K.
void sgemm_batch_sum(const GemmArgs& args, cudaStream_t stream);
// C = A @ B (each matrix of the batch) as slices of slice_k of K (the last one shorter when
// slice_k does not divide K), run by the best version into a workspace, then added in slice
// order with the epilogue.
void sgemm_split_k(const GemmArgs& args, int64_t slice_k, cudaStream_t stream);

}  // namespace tg::cuda
