// The SGEMM checks' host side, shared by tests/test_cuda_sgemm.cpp (on the GPU) and
// tests/sgemm_host_emulation.cpp (the same kernels emulated on the CPU): a case (shape, layout,
// batch), its operands in host memory with NaN in every gap between rows and batch matrices, a
// float64 reference, and the comparison that also proves every element of C was written and
// nothing outside it was; and operand masks (sgemm.h's mask_a, mask_b) with the masked operands
// they stand for.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/sgemm/sgemm.h"

namespace tg::testing {

struct GemmCase {
  int M, N, K;
  bool trans_a = false, trans_b = false;
  int batch = 1;
  bool broadcast_b = false;  // one B for the whole batch (stride_b = 0)
  bool padded = false;       // leading dimensions and batch strides padded past the rows they hold
  bool interleaved_c = false;  // C's batch matrices interleaved row by row ([M, batch, N], as
                               // head_matmul writes its heads): stride_c one row, ldc all of them

  std::string name() const {
    std::string s = std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N) +
                    (trans_a ? " A^T" : "") + (trans_b ? " B^T" : "");
    if (batch > 1) s += " batch " + std::to_string(batch) + (broadcast_b ? " (B broadcast)" : "");
    return s + (padded ? " padded" : " tight") + (interleaved_c ? " C interleaved" : "");
  }
};

// The bit pattern C is poisoned with before each run: a NaN (what cudaMemset(C, 0xFF, ...) writes).
inline float poison() {
  const uint32_t bits = 0xFFFFFFFFu;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline bool is_poison(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof f);
  return bits == 0xFFFFFFFFu;
}

// One case's operands in host memory, laid out as the GemmArgs they come with describe.
struct GemmHost {
  GemmCase c;
  int64_t lda = 0, ldb = 0, ldc = 0, stride_a = 0, stride_b = 0, stride_c = 0;
  std::vector<float> A, B;        // gaps (row padding, between batch matrices) hold NaN
  size_t c_size = 0;              // floats in C's buffer, gaps included
  std::vector<double> reference;  // [batch, M, N], float64 products of the float32 inputs

  // Arguments with these leading dimensions and strides over the given buffers.
  tg::cuda::GemmArgs args(const float* a, const float* b, float* c_out) const {
    tg::cuda::GemmArgs g;
    g.M = c.M, g.N = c.N, g.K = c.K;
    g.A = a, g.lda = lda, g.trans_a = c.trans_a;
    g.B = b, g.ldb = ldb, g.trans_b = c.trans_b;
    g.C = c_out, g.ldc = ldc;
    g.batch = c.batch, g.stride_a = stride_a, g.stride_b = stride_b, g.stride_c = stride_c;
    return g;
  }
};

namespace detail {

// A rows x cols row-major matrix's leading dimension: tight, or rounded up to a multiple of 4 and
// 4 more (so there is always a gap, and 16-byte rows stay aligned).
inline int64_t leading_dim(int64_t cols, bool padded) {
  return padded ? (cols + 3) / 4 * 4 + 4 : std::max<int64_t>(1, cols);
}
inline int64_t batch_stride(int64_t rows, int64_t ld, bool padded) {
  return rows * ld + (padded ? 4 : 0);
}

// `count` stored matrices of rows x cols: uniform [-1, 1) values, NaN in every gap.
inline std::vector<float> fill_operand(int64_t rows, int64_t cols, int64_t ld, int64_t stride,
                                       int count, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t size = count == 0 ? 0 : (count - 1) * stride + rows * ld;
  std::vector<float> v(static_cast<size_t>(std::max<int64_t>(size, 1)), std::nanf(""));
  for (int b = 0; b < count; ++b)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) v[b * stride + r * ld + c] = u(rng);
  return v;
}

}  // namespace detail

// h.reference from h.A and h.B: the logical operands as dense float64 [M, K] and [K, N], then
// i-k-j products.
inline void set_reference(GemmHost& h) {
  const GemmCase& c = h.c;
  const int64_t M = c.M, N = c.N, K = c.K;
  h.reference.assign(static_cast<size_t>(c.batch * M * N), 0.0);
  std::vector<double> a(static_cast<size_t>(M * K)), b(static_cast<size_t>(K * N));
  for (int z = 0; z < c.batch; ++z) {
    const float* az = h.A.data() + z * h.stride_a;
    const float* bz = h.B.data() + z * h.stride_b;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k)
        a[m * K + k] = c.trans_a ? az[k * h.lda + m] : az[m * h.lda + k];
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n)
        b[k * N + n] = c.trans_b ? bz[n * h.ldb + k] : bz[k * h.ldb + n];
    double* out = h.reference.data() + z * M * N;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) {
        const double am = a[m * K + k];
        for (int64_t n = 0; n < N; ++n) out[m * N + n] += am * b[k * N + n];
      }
  }
}

inline GemmHost make_gemm_host(const GemmCase& c, uint64_t seed) {
  using detail::batch_stride;
  using detail::leading_dim;
  GemmHost h;
  h.c = c;
  std::mt19937_64 rng(seed);
  // Stored shapes: A [M, K] or [K, M]; B [K, N] or [N, K]; C [M, N].
  const int64_t a_rows = c.trans_a ? c.K : c.M, a_cols = c.trans_a ? c.M : c.K;
  const int64_t b_rows = c.trans_b ? c.N : c.K, b_cols = c.trans_b ? c.K : c.N;
  h.lda = leading_dim(a_cols, c.padded);
  h.ldb = leading_dim(b_cols, c.padded);
  h.ldc = leading_dim(c.N, c.padded);
  h.stride_a = batch_stride(a_rows, h.lda, c.padded);
  h.stride_b = c.broadcast_b ? 0 : batch_stride(b_rows, h.ldb, c.padded);
  h.stride_c = batch_stride(c.M, h.ldc, c.padded);
  if (c.interleaved_c) {
    h.stride_c = h.ldc;
    h.ldc = c.batch * h.stride_c + (c.padded ? 4 : 0);
  }
  h.A = detail::fill_operand(a_rows, a_cols, h.lda, h.stride_a, c.batch, rng);
  h.B = detail::fill_operand(b_rows, b_cols, h.ldb, h.stride_b, c.broadcast_b ? 1 : c.batch, rng);
  h.c_size = c.batch == 0 ? 1 : static_cast<size_t>((c.batch - 1) * h.stride_c + c.M * h.ldc);
  set_reference(h);
  return h;
}

// A mask for an operand buffer (sgemm.h's mask_a or mask_b: the same layout, so the same size):
// where the operand holds a value, 4 of the 7 choices keep it (> 0 or NaN, as a ReLU's NaN output
// does) and the rest drop it in every way a ReLU's saved output can (+0, -0, negative); in the
// gaps, where the operand holds NaN, 1, so that reading a gap through the mask still shows as NaN.
inline std::vector<float> random_mask(const std::vector<float>& operand, std::mt19937_64& rng) {
  const float values[] = {0.75f, 2.0f, 1e-3f, 0.0f, -0.0f, -0.5f, std::nanf("")};
  std::uniform_int_distribution<int> pick(0, 6);
  std::vector<float> mask(operand.size());
  for (size_t i = 0; i < operand.size(); ++i)
    mask[i] = std::isnan(operand[i]) ? 1.0f : values[pick(rng)];
  return mask;
}

// The operand as the kernels read it through `mask`: 0 where mask <= 0, else x (a NaN mask too,
// as PyTorch's ReLU gradient).
inline std::vector<float> apply_mask(const std::vector<float>& operand,
                                     const std::vector<float>& mask) {
  std::vector<float> out(operand.size());
  for (size_t i = 0; i < operand.size(); ++i) out[i] = mask[i] <= 0.0f ? 0.0f : operand[i];
  return out;
}

struct GemmCheck {
  double rel_error = 0;       // ||C - ref|| / ||ref|| over the M x N elements (absolute if ref = 0)
  int64_t unwritten = 0;      // elements of C still holding the poison
  int64_t non_finite = 0;     // elements of C that are NaN or infinite (unwritten ones included)
  int64_t written_gaps = 0;   // elements outside C's matrices that no longer hold the poison
};

// C's buffer (c_size floats, as the kernel left it after poisoning) against a reference [batch,
// M, N] given as doubles.
template <typename Ref>
GemmCheck check_gemm(const GemmHost& h, const std::vector<float>& c_buffer, const Ref& ref) {
  GemmCheck r;
  std::vector<bool> inside(h.c_size, false);
  double diff2 = 0, ref2 = 0;
  const int64_t M = h.c.M, N = h.c.N;
  for (int z = 0; z < h.c.batch; ++z)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const size_t at = static_cast<size_t>(z * h.stride_c + m * h.ldc + n);
        inside[at] = true;
        const float got = c_buffer[at];
        const double want = static_cast<double>(ref[static_cast<size_t>((z * M + m) * N + n)]);
        r.unwritten += is_poison(got);
        r.non_finite += !std::isfinite(got);
        diff2 += (got - want) * (got - want);
        ref2 += want * want;
      }
  for (size_t i = 0; i < h.c_size; ++i) r.written_gaps += !inside[i] && !is_poison(c_buffer[i]);
  r.rel_error = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  if (std::isnan(r.rel_error)) r.rel_error = INFINITY;
  return r;
}

// C's matrices out of its buffer (ldc, stride_c, gaps), as the dense [batch, M, N] that
// check_gemm's reference is: so that one kernel's output can be the reference for another's.
inline std::vector<float> dense_c(const GemmHost& h, const std::vector<float>& c_buffer) {
  std::vector<float> dense;
  dense.reserve(static_cast<size_t>(h.c.batch * h.c.M * h.c.N));
  for (int z = 0; z < h.c.batch; ++z)
    for (int64_t m = 0; m < h.c.M; ++m)
      for (int64_t n = 0; n < h.c.N; ++n)
        dense.push_back(c_buffer[static_cast<size_t>(z * h.stride_c + m * h.ldc + n)]);
  return dense;
}

// The cases every version must get right: awkward sizes (not multiples of any tile), each
// transpose combination, tight and padded layouts (tight rows of odd length are what the 16-byte
// versions decline), K = 0, batches with B broadcast. `large` adds the model's shapes, which the
// CPU emulation is too slow for.
inline std::vector<GemmCase> sgemm_cases(bool large) {
  std::vector<GemmCase> cases;
  const int small[][3] = {{1, 1, 1}, {129, 33, 77},  // {M, N, K}
                          {3, 5, 2}, {130, 129, 17}, {64, 64, 64},
                          {257, 31, 260}, {5, 300, 7}};
  for (const auto& s : small)
    for (int t = 0; t < 4; ++t)
      for (bool padded : {false, true})
        cases.push_back({s[0], s[1], s[2], (t & 1) != 0, (t & 2) != 0, 1, false, padded});
  cases.push_back({17, 9, 0, false, false, 1, false, false});  // K = 0: C = 0
  cases.push_back({33, 20, 45, false, false, 3, true, true});   // batch, B broadcast
  cases.push_back({33, 20, 45, true, true, 3, false, false});   // batch, both transposed
  cases.push_back({7, 6, 5, false, true, 4, true, false});
  // C interleaved: per-head products written straight into an [M, heads, N] tensor.
  cases.push_back({37, 8, 16, false, false, 4, true, false, true});
  cases.push_back({19, 12, 9, true, false, 3, false, true, true});
  if (large) {
    // The model's shapes (M x K x N = [3830, 128] @ [128, 512], ...), forward and backward.
    cases.push_back({3830, 512, 128});                      // forward, MLP in
    cases.push_back({11490, 128, 128});                     // attention-sized
    cases.push_back({512, 128, 3830, true, false});         // weight grad x^T @ dy, K = batch
    cases.push_back({3830, 128, 512, false, true});         // input grad dy @ W^T
    cases.push_back({3830, 113, 128, false, false, 1, false, false});  // odd N: tight rows
    cases.push_back({3, 2, 5, false, false, 70000, true, false});  // batch > 65535: z chunks
  }
  return cases;
}

}  // namespace tg::testing
