// The SGEMM registry (every numbered version, in order), best_sgemm() and the checked entry point.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iterator>
#include <string>

#include "core/error.h"
#include "kernels/cuda/sgemm/sgemm.h"
#include "kernels/cuda/sgemm/versions.h"

namespace tg::cuda {

const std::vector<SgemmVersion>& sgemm_versions() {
  static const std::vector<SgemmVersion> versions = {
      sgemm_v1_naive(),          sgemm_v2_coalesced(),      sgemm_v3_smem_tiling(),
      sgemm_v4_blocktiling_1d(), sgemm_v5_blocktiling_2d(), sgemm_v6_vectorized(),
      sgemm_v7_warptiling(),     sgemm_v8_wmma_tf32(),      sgemm_v9_mma_3xtf32(),
      sgemm_v10_mma_tf32(),
  };
  return versions;
}

namespace {
std::atomic<int>& tf32_setting() {  // -1: not yet read from the environment
  static std::atomic<int> setting{-1};
  return setting;
}
}  // namespace

bool allow_tf32() {
  int setting = tf32_setting().load();
  if (setting < 0) {
    const char* env = std::getenv("TG_CUDA_TF32");
    setting = env != nullptr && std::string(env) == "1" ? 1 : 0;
    tf32_setting().store(setting);
  }
  return setting == 1;
}

void set_allow_tf32(bool allow) { tf32_setting().store(allow ? 1 : 0); }

namespace {
void check_version_number(int number, const char* source) {
  const int last = static_cast<int>(sgemm_versions().size());
  check(number >= 0 && number <= last, source, ": ", number, " is no SGEMM version (1 to ", last,
        ", or 0 for best_sgemm's own choice)");
}

std::atomic<int>& forced_setting() {  // -1: not yet read from the environment
  static std::atomic<int> setting{-1};
  return setting;
}
}  // namespace

int forced_sgemm() {
  int setting = forced_setting().load();
  if (setting < 0) {
    const char* env = std::getenv("TG_CUDA_SGEMM");
    setting = 0;
    if (env != nullptr && *env != '\0') {
      char* end = nullptr;
      const long number = std::strtol(env, &end, 10);
      check(*end == '\0' && number >= 0 && number <= 1000, "TG_CUDA_SGEMM=", env,
            ": not a version number");
      setting = static_cast<int>(number);
      check_version_number(setting, "TG_CUDA_SGEMM");
    }
    forced_setting().store(setting);
  }
  return setting;
}

void set_forced_sgemm(int number) {
  check_version_number(number, "set_forced_sgemm");
  forced_setting().store(number);
}

// Each version is faster than the one before it, so the best is the highest-numbered measured
// version that accepts the arguments, float32 unless TF32 is allowed. (The ranking was the
// design's expectation; the first H200 run, docs/benchmarks.md, confirmed v7 for float32 and v8
// for TF32 at the model's shapes, though v6 beats v7 on large squares. A version joins the
// default only once a GPU run has measured it.)
const SgemmVersion& best_sgemm(const GemmArgs& args) {
  const auto& versions = sgemm_versions();
  if (const int forced = forced_sgemm()) {
    const SgemmVersion& v = versions[static_cast<size_t>(forced - 1)];
    if (v.supports(args)) return v;
  }
  const bool tf32 = allow_tf32();
  for (auto it = versions.rbegin(); it != versions.rend(); ++it)
    if (it->measured && (!it->tf32 || tf32) && it->supports(args)) return *it;
  throw Error(cat("sgemm: no version supports [", args.M, ", ", args.K, "] @ [", args.K, ", ",
                  args.N, "] x ", args.batch, " (grid too large)"));
}

void check_gemm_groups(const GemmArgs& a, const char* who) {
  check(a.groups >= 1 && a.groups <= GemmArgs::kMaxGroups && a.batch % a.groups == 0, who, ": ",
        a.groups, " groups (at most ", GemmArgs::kMaxGroups, ") do not divide a batch of ",
        a.batch);
}

void check_gemm_args(const GemmArgs& a, const char* who) {
  check(a.M >= 0 && a.N >= 0 && a.K >= 0 && a.batch >= 0, who, ": negative size M=", a.M,
        " N=", a.N, " K=", a.K, " batch=", a.batch);
  // Stored row lengths: A is [M, K] or, transposed, [K, M]; B is [K, N] or [N, K].
  const int64_t a_row = a.trans_a ? a.M : a.K, b_row = a.trans_b ? a.K : a.N;
  check(a.lda >= std::max<int64_t>(1, a_row), who, ": lda ", a.lda, " < row length ", a_row);
  check(a.ldb >= std::max<int64_t>(1, b_row), who, ": ldb ", a.ldb, " < row length ", b_row);
  check(a.ldc >= std::max<int64_t>(1, a.N), who, ": ldc ", a.ldc, " < N ", a.N);
  check(a.stride_a >= 0 && a.stride_b >= 0, who, ": negative batch stride");
  check(a.slices == 1, who, ": K slices are split_k's own (slices ", a.slices, ")");
  check_gemm_groups(a, who);
  if (a.groups > 1) {
    check(a.group_a[0] == 0 && a.group_b[0] == 0 && a.group_c[0] == 0, who,
          ": the first group's offsets must be 0");
    check(!a.pre && !a.residual && !a.mask_c && !a.has_mask(), who,
          ": groups take no pre-activation output, residual or mask");
  }
  const bool has_c = a.M > 0 && a.N > 0 && a.batch > 0;
  if (has_c && a.batch / a.groups > 1) {  // the matrices of one group must not overlap
    // The batch's outputs one after another, or interleaved row by row (the heads of an
    // [M, batch, N] tensor: stride_c N or more, and all the batch's rows within one ldc).
    const int64_t c_extent = static_cast<int64_t>(a.M - 1) * a.ldc + a.N;
    const bool stacked = a.stride_c >= c_extent;
    const bool interleaved =
        a.stride_c >= a.N && (a.batch / a.groups - 1) * a.stride_c + a.N <= a.ldc;
    check(stacked || interleaved, who, ": stride_c ", a.stride_c, " and ldc ", a.ldc,
          " make the batch's outputs overlap (each is ", a.M, " rows of ", a.N, ")");
  }
  check(!a.pre || a.pre != a.C, who, ": the pre-activation output must not be C");
  check(!a.residual || (a.residual != a.C && a.residual != a.pre), who,
        ": the residual must not be an output");
  for (const float* mask : {a.mask_a, a.mask_b, a.mask_c})
    check(!mask || (mask != a.C && mask != a.pre), who, ": a mask must not be an output");
  const bool reads = has_c && a.K > 0;
  check(!has_c || a.C, who, ": C is null");
  check(!reads || (a.A && a.B), who, ": A or B is null");
}

GemmArgs gemm_rows(const GemmArgs& args, int first, int rows) {
  check(first >= 0 && rows >= 0 && int64_t{first} + rows <= args.M, "gemm_rows: rows [", first,
        ", ", int64_t{first} + rows, ") are not within M = ", args.M);
  GemmArgs part = args;
  part.M = rows;
  // Row m of op(A) starts at m * lda, or, stored transposed, at column m. Null stays null.
  const int64_t a_offset = args.trans_a ? first : first * args.lda;
  const int64_t c_offset = first * args.ldc;
  if (part.A) part.A += a_offset;
  if (part.mask_a) part.mask_a += a_offset;
  if (part.C) part.C += c_offset;
  if (part.pre) part.pre += c_offset;
  if (part.residual) part.residual += c_offset;
  if (part.mask_c) part.mask_c += c_offset;
  return part;
}

void sgemm_by_rows(const GemmArgs& args, int rows_per_launch, cudaStream_t stream, SgemmFn run) {
  check(rows_per_launch > 0, "sgemm_by_rows: ", rows_per_launch, " rows per launch");
  for (int first = 0; first < args.M;) {
    const int rows = std::min(rows_per_launch, args.M - first);
    run(gemm_rows(args, first, rows), stream);
    first += rows;
  }
}

void sgemm(const GemmArgs& args, cudaStream_t stream) {
  check_gemm_args(args, "sgemm");
  if (args.M > kMaxRowsPerLaunch) return sgemm_by_rows(args, kMaxRowsPerLaunch, stream);
  if (const int64_t slice_k = split_k_slice(args)) return sgemm_split_k(args, slice_k, stream);
  best_sgemm(args).run(args, stream);
}

}  // namespace tg::cuda
