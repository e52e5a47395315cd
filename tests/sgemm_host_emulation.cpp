// Every SGEMM version's kernels, compiled as C++ and run on the CPU through tests/cuda_emulation/,
// against a float64 reference on the awkward small cases of tests/sgemm_test_util.h: checks the
// index math (tiles, edges, transposes, batches, 16-byte paths) on machines without a GPU. Build
// it with AddressSanitizer and out-of-bounds reads show too (the operands are exactly sized).
// Then the epilogue (bias, activation, pre-activation output, residual, output mask) on the same
// cases, in every version that accepts it (v5, v7 and the tensor-core versions): pre must be the
// plain product plus the bias bit for bit, C must be act(pre) (plus the residual; 0 where mask_c
// is <= 0), and nothing outside C or pre may be written.
// Then the operand masks (mask_a, mask_b: a ReLU backward's dy read where pre is not <= 0) in every
// version that implements them (v1, v5, v7 on 16-byte rows, v8 to v10; the others must decline
// them): A only, B only and both, against a float64 reference of the masked operands; in v5 and
// v7 also bit for bit against the same version's plain product of the masked operands, and with
// the epilogue on top.
// (v1 masks inside its multiply-add, which the compiler may contract differently.)
// Then split-K through sgemm() (check_split_k), and grouped products (GemmArgs::groups) and
// sgemm_batch_sum (check_groups): each group bit for bit as the same version run on it alone.
// Then products in blocks of rows (check_row_blocks), up to one too tall for a single launch.
// Then v9's kernel at its other block tilings (check_mma_tilings, mma_tilings.h).
// Exit status 0 when every supported case passes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/sgemm/mma_tilings.h"
#include "kernels/cuda/sgemm/sgemm.h"
#include "sgemm_test_util.h"

using namespace tg::cuda;
using namespace tg::testing;

namespace {

const tg::Activation kActivations[] = {tg::Activation::Identity, tg::Activation::Relu,
                                       tg::Activation::Gelu, tg::Activation::Square};

// The epilogue's activation as kernels/cuda/linear_epilogue.cu computes it for float.
float activate(tg::Activation act, float x) {
  switch (act) {
    case tg::Activation::Identity:
      return x;
    case tg::Activation::Relu:
      return x < 0.0f ? 0.0f : x;  // NaN stays NaN, as the kernels
    case tg::Activation::Gelu:
      return static_cast<float>(0.5 * x * (1.0 + std::erf(x * 0.70710678118654752440)));
    case tg::Activation::Square:
      return x * x;
  }
  return x;
}

// The epilogue's parts, as check_epilogue takes them: one of 64 combinations (4 activations, and
// each of bias, pre, residual and mask_c there or not).
struct EpilogueCombo {
  tg::Activation act;
  bool bias, pre, residual, mask_c;
  explicit EpilogueCombo(int combo)
      : act(kActivations[combo % 4]),
        bias((combo / 4) % 2 != 0),
        pre((combo / 8) % 2 != 0),
        residual((combo / 16) % 2 != 0),
        mask_c((combo / 32) % 2 != 0) {}
};
constexpr int kEpilogueCombos = 64;

// One run of version v with the epilogue (e.act; a bias when e.bias; a pre output when e.pre; a
// residual and an output mask, laid out as C, when e.residual and e.mask_c) on the operands of
// `base` (which may carry operand masks) against the same version's product without the
// epilogue `plain` (C's buffer): true when it passes.
bool check_epilogue(const SgemmVersion& v, const GemmCase& c, const GemmHost& h,
                    const GemmArgs& base, const std::vector<float>& plain, const EpilogueCombo& e,
                    uint64_t seed) {
  const tg::Activation act = e.act;
  const bool has_bias = e.bias, want_pre = e.pre, has_residual = e.residual;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> bias(static_cast<size_t>(std::max(c.N, 1)));
  for (float& b : bias) b = u(rng);
  std::vector<float> residual(h.c_size);
  for (float& r : residual) r = u(rng);
  const std::vector<float> mask_c = random_mask(residual, rng);  // 0, -0, negative, NaN among them
  std::vector<float> out(h.c_size, poison()), pre(h.c_size, poison());
  GemmArgs args = base;
  args.C = out.data();
  args.bias = has_bias ? bias.data() : nullptr;
  args.act = act;
  args.pre = want_pre ? pre.data() : nullptr;
  args.residual = has_residual ? residual.data() : nullptr;
  args.mask_c = e.mask_c ? mask_c.data() : nullptr;
  if (!v.supports(args)) return true;  // declined: counted by the caller
  v.run(args, nullptr);
  // Expected buffers: pre = plain + bias (the unfused bias_activation's float add, + 0 without a
  // bias), C = act(pre) (+ the residual, a float add afterwards; then 0 where mask_c <= 0, NaN
  // masks keeping the value); the gaps stay poisoned.
  int64_t bad_pre = 0, bad_c = 0;
  for (int z = 0; z < c.batch; ++z)
    for (int m = 0; m < c.M; ++m)
      for (int n = 0; n < c.N; ++n) {
        const size_t at = static_cast<size_t>(z * h.stride_c + m * h.ldc + n);
        const float want_pre_v = plain[at] + (has_bias ? bias[static_cast<size_t>(n)] : 0.0f);
        const float activated = activate(act, want_pre_v);
        const float summed = has_residual ? activated + residual[at] : activated;
        const float want_c = e.mask_c && mask_c[at] <= 0.0f ? 0.0f : summed;
        if (want_pre && std::memcmp(&pre[at], &want_pre_v, sizeof(float)) != 0) ++bad_pre;
        if (std::memcmp(&out[at], &want_c, sizeof(float)) != 0) ++bad_c;
        out[at] = poison();  // so that the scan below finds only writes outside C
        pre[at] = poison();
      }
  int64_t gaps = 0;
  for (size_t i = 0; i < h.c_size; ++i) gaps += !is_poison(out[i]) + !is_poison(pre[i]);
  if (bad_pre == 0 && bad_c == 0 && gaps == 0) return true;
  std::printf("FAIL v%d_%s %s epilogue act %d bias %d pre %d residual %d mask_c %d masks %d%d: "
              "%lld of pre and %lld of C differ from the unfused result, %lld written outside\n",
              v.number, v.name, c.name().c_str(), static_cast<int>(act), has_bias, want_pre,
              has_residual, e.mask_c,
              base.mask_a != nullptr, base.mask_b != nullptr, static_cast<long long>(bad_pre),
              static_cast<long long>(bad_c), static_cast<long long>(gaps));
  return false;
}

// Relative error allowed against float64: float32 arithmetic, or inputs rounded to TF32 (10
// mantissa bits: each rounding up to 2^-11 relative) in the tensor-core versions.
double tolerance(const SgemmVersion& v) { return v.tf32 ? 5e-3 : 1e-5; }

// The version best_sgemm() picks for aligned rows while TF32 is not allowed and no version is
// forced: the last one measured on a GPU.
const SgemmVersion& last_float32_version() {
  const SgemmVersion* last = nullptr;
  for (const SgemmVersion& v : sgemm_versions())
    if (!v.tf32 && v.measured) last = &v;
  return *last;
}

// The versions that implement the operand masks; every other one must decline them.
bool implements_masks(const SgemmVersion& v) {
  return v.number == 1 || v.number == 5 || v.number >= 7;
}

// The masks of one case and the operands as read through them.
struct Masks {
  std::vector<float> a, b;  // laid out as h.A and h.B
  GemmHost masked_a, masked_b, masked_both;  // h with A, B or both replaced by the masked values

  const GemmHost& masked(int which) const {
    return which == 1 ? masked_a : which == 2 ? masked_b : masked_both;
  }
};

Masks make_masks(const GemmHost& h, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Masks m;
  m.a = random_mask(h.A, rng);
  m.b = random_mask(h.B, rng);
  m.masked_a = m.masked_b = m.masked_both = h;
  m.masked_a.A = m.masked_both.A = apply_mask(h.A, m.a);
  m.masked_b.B = m.masked_both.B = apply_mask(h.B, m.b);
  for (GemmHost* x : {&m.masked_a, &m.masked_b, &m.masked_both}) set_reference(*x);
  return m;
}

// h's arguments with mask_a (which & 1) and mask_b (which & 2) set.
GemmArgs masked_args(const GemmHost& h, const Masks& masks, int which, float* out) {
  GemmArgs args = h.args(h.A.data(), h.B.data(), out);
  args.mask_a = which & 1 ? masks.a.data() : nullptr;
  args.mask_b = which & 2 ? masks.b.data() : nullptr;
  return args;
}

// One run of version v with the masks chosen by `which` (1: A, 2: B, 3: both) against the
// float64 product of the masked operands, and, when `same_bits_as_plain`, bit for bit against
// v's plain product of them (the same values summed in the same order). Leaves the masked
// product in `out`. True when it passes.
bool check_masks(const SgemmVersion& v, const GemmHost& h, const Masks& masks, int which,
                 bool same_bits_as_plain, std::vector<float>& out) {
  const GemmHost& masked = masks.masked(which);
  std::vector<float> plain(h.c_size, poison());
  v.run(masked.args(masked.A.data(), masked.B.data(), plain.data()), nullptr);
  std::fill(out.begin(), out.end(), poison());
  v.run(masked_args(h, masks, which, out.data()), nullptr);
  const GemmCheck r = check_gemm(masked, out, masked.reference);
  const bool same_bits = !same_bits_as_plain ||
                         std::memcmp(out.data(), plain.data(), out.size() * sizeof(float)) == 0;
  const bool ok = r.rel_error < tolerance(v) && r.unwritten == 0 && r.non_finite == 0 &&
                  r.written_gaps == 0 && same_bits;
  if (!ok)
    std::printf("FAIL v%d_%s %s masks %s: rel_error %.3g, unwritten %lld, non-finite %lld, "
                "written outside C %lld, %s the plain product of the masked operands\n",
                v.number, v.name, h.c.name().c_str(),
                which == 1 ? "A" : which == 2 ? "B" : "A and B", r.rel_error,
                static_cast<long long>(r.unwritten), static_cast<long long>(r.non_finite),
                static_cast<long long>(r.written_gaps), same_bits ? "equal to" : "differs from");
  return ok;
}

// Whether f() throws tg::Error.
template <typename F>
bool rejects(const F& f) {
  try {
    f();
  } catch (const tg::Error&) {
    return true;
  }
  return false;
}

// Split-K (split_k.cu) through sgemm(), the engine's entry: the slice sizes it picks, then on long
// products with few output tiles, each layout, tight rows (v5 runs the slices) and padded ones
// (v7): the float64 reference, every element of C written and nothing else, the same bits on a
// second run, the epilogue bit for bit on top of the plain split product, and the masks. Returns
// the number of failures.
int check_split_k() {
  int failures = 0;
  const auto expect = [&](bool ok, const std::string& what) {
    if (!ok) {
      ++failures;
      std::printf("FAIL split-K: %s\n", what.c_str());
    }
  };
  const auto args_of = [](int M, int N, int K, int batch) {
    GemmArgs a;
    a.M = M, a.N = N, a.K = K, a.batch = batch;
    a.lda = K, a.ldb = N, a.ldc = N;
    return a;
  };
  // The nanda MLP's weight gradient: 4 tiles, K = 3830 in 30 slices of 128 (the last 118); the
  // attention's per-head weight gradients: 4 matrices of one tile, K = 342 in 8 slices of 48.
  expect(split_k_slice(args_of(128, 512, 3830, 1)) == 128, "slice of 128x512x3830");
  expect(split_k_slice(args_of(3830, 128, 512, 1)) == 112, "slice of 3830x128x512");
  expect(split_k_slice(args_of(128, 32, 342, 4)) == 48, "slice of 4 x 128x32x342");
  expect(split_k_slice(args_of(128, 512, 3830, 2)) == 240, "slice of 2 x 128x512x3830");
  expect(split_k_slice(args_of(3830, 512, 128, 1)) == 0, "120 tiles of K = 128 are not split");
  expect(split_k_slice(args_of(3830, 113, 128, 1)) == 32, "slice of 3830x113x128 (30 tiles)");
  expect(split_k_slice(args_of(342, 32, 128, 12)) == 32, "slice of 12 x 342x32x128");
  expect(split_k_slice(args_of(3830, 128, 113, 1)) == 48, "slice of 3830x128x113 (K = 113)");
  expect(split_k_slice(args_of(3830, 113, 63, 1)) == 0, "K = 63 is not split");
  expect(split_k_slice(args_of(1024, 1024, 4096, 1)) == 2048, "64 tiles in two slices");
  expect(split_k_slice(args_of(1024, 2048, 4096, 1)) == 0, "128 tiles are not split");
  expect(split_k_slice(args_of(8, 8, 4096, 20000)) == 0, "more entries than one launch holds");
  expect(split_k_slice(args_of(0, 128, 512, 1)) == 0, "no rows");
  expect(split_k_slice(args_of(128, 0, 512, 1)) == 0, "no columns");

  uint64_t seed = 5000;
  struct Shape {
    int M, N, K, batch;
    bool broadcast_b;
  };
  for (const Shape& s : {Shape{40, 36, 1100, 1, false}, Shape{37, 33, 1029, 1, false},
                         Shape{19, 24, 300, 3, true}, Shape{21, 17, 333, 2, false}})
    for (int t = 0; t < 4; ++t)
      for (bool padded : {false, true}) {
        const GemmCase c{s.M, s.N, s.K, (t & 1) != 0, (t & 2) != 0, s.batch, s.broadcast_b, padded};
        const GemmHost h = make_gemm_host(c, seed++);
        const std::string name = c.name();
        std::vector<float> out(h.c_size, poison()), again(h.c_size, poison());
        const GemmArgs args = h.args(h.A.data(), h.B.data(), out.data());
        expect(split_k_slice(args) > 0, name + " is split");
        sgemm(args, nullptr);
        const GemmCheck r = check_gemm(h, out, h.reference);
        expect(r.rel_error < 1e-5 && r.unwritten == 0 && r.non_finite == 0 &&
                   r.written_gaps == 0,
               name + ": against float64, every element written and nothing else");
        sgemm(h.args(h.A.data(), h.B.data(), again.data()), nullptr);
        expect(std::memcmp(out.data(), again.data(), out.size() * sizeof(float)) == 0,
               name + ": the same bits twice");
        // The epilogue on the sum: pre = the plain split product + bias, C = relu(pre) plus a
        // residual, then 0 where the output mask is <= 0.
        std::vector<float> bias(static_cast<size_t>(c.N)), pre(h.c_size, poison());
        std::vector<float> residual(h.c_size), mask_c(h.c_size);
        for (int n = 0; n < c.N; ++n) bias[n] = 0.25f * static_cast<float>(n % 7) - 0.75f;
        for (size_t i = 0; i < residual.size(); ++i) {
          residual[i] = 0.125f * static_cast<float>(i % 11) - 0.5f;
          mask_c[i] = static_cast<float>(i % 5) - 1.0f;  // -1, 0, 1, 2, 3
        }
        GemmArgs epi = h.args(h.A.data(), h.B.data(), again.data());
        epi.bias = bias.data(), epi.act = tg::Activation::Relu, epi.pre = pre.data();
        epi.residual = residual.data(), epi.mask_c = mask_c.data();
        std::fill(again.begin(), again.end(), poison());
        sgemm(epi, nullptr);
        int64_t bad = 0;
        for (int z = 0; z < c.batch; ++z)
          for (int m = 0; m < c.M; ++m)
            for (int n = 0; n < c.N; ++n) {
              const size_t at = static_cast<size_t>(z * h.stride_c + m * h.ldc + n);
              const float v = out[at] + bias[n];
              const float y = mask_c[at] <= 0 ? 0.0f : (v > 0 ? v : 0.0f) + residual[at];
              bad += std::memcmp(&pre[at], &v, sizeof v) != 0 ||
                     std::memcmp(&again[at], &y, sizeof y) != 0;
            }
        expect(bad == 0, name + ": the epilogue on the split product, bit for bit");
        // Both masks, against the float64 product of the masked operands.
        const Masks masks = make_masks(h, seed * 13);
        std::fill(again.begin(), again.end(), poison());
        sgemm(masked_args(h, masks, 3, again.data()), nullptr);
        const GemmCheck rm = check_gemm(masks.masked(3), again, masks.masked(3).reference);
        expect(rm.rel_error < 1e-5 && rm.unwritten == 0 && rm.written_gaps == 0,
               name + ": masks on both operands");
      }
  return failures;
}

// Products in blocks of rows (sgemm_by_rows, gemm_rows): each layout with the epilogue and both
// masks, in blocks of 8 rows bit for bit as one sgemm() (the same version for every block), in
// blocks of 7 against float64, every element of C and pre written and nothing else; then a
// product with an epilogue too tall for any version to launch whole, which sgemm() and
// sgemm_batch_sum() split into blocks of kMaxRowsPerLaunch rows. Returns the number of failures.
int check_row_blocks() {
  int failures = 0;
  const auto expect = [&](bool ok, const std::string& what) {
    if (!ok) {
      ++failures;
      std::printf("FAIL rows: %s\n", what.c_str());
    }
  };
  uint64_t seed = 7000;
  for (int t = 0; t < 4; ++t)
    for (bool padded : {false, true}) {
      const GemmCase c{37, 21, 19, (t & 1) != 0, (t & 2) != 0, 2, t == 3, padded};
      const GemmHost h = make_gemm_host(c, seed++);
      const Masks masks = make_masks(h, seed * 17);
      std::vector<float> bias(static_cast<size_t>(c.N)), residual(h.c_size), mask_c(h.c_size);
      for (int n = 0; n < c.N; ++n) bias[n] = 0.25f * static_cast<float>(n % 7) - 0.75f;
      for (size_t i = 0; i < residual.size(); ++i) {
        residual[i] = 0.125f * static_cast<float>(i % 11) - 0.5f;
        mask_c[i] = static_cast<float>(i % 3);  // C is 0 at a third of its elements
      }
      std::vector<float> whole(h.c_size, poison()), whole_pre(h.c_size, poison());
      const auto with_epilogue = [&](float* out, float* pre) {
        GemmArgs a = masked_args(h, masks, 3, out);
        a.bias = bias.data(), a.act = tg::Activation::Relu, a.pre = pre;
        a.residual = residual.data(), a.mask_c = mask_c.data();
        return a;
      };
      sgemm(with_epilogue(whole.data(), whole_pre.data()), nullptr);
      for (int rows : {8, 7}) {
        const std::string name = c.name() + " in blocks of " + std::to_string(rows) + " rows";
        std::vector<float> out(h.c_size, poison()), pre(h.c_size, poison());
        sgemm_by_rows(with_epilogue(out.data(), pre.data()), rows, nullptr);
        if (rows == 8) {
          expect(std::memcmp(out.data(), whole.data(), out.size() * sizeof(float)) == 0 &&
                     std::memcmp(pre.data(), whole_pre.data(), pre.size() * sizeof(float)) == 0,
                 name + ": C and pre the bits of one sgemm()");
        }
        // pre is the masked product plus the bias; less the bias, it is the product. C and pre
        // are written inside the matrices (poisoned again here) and nowhere else.
        std::vector<float> product(h.c_size, poison());
        int64_t unwritten = 0, gaps = 0;
        for (int z = 0; z < c.batch; ++z)
          for (int m = 0; m < c.M; ++m)
            for (int n = 0; n < c.N; ++n) {
              const size_t at = static_cast<size_t>(z * h.stride_c + m * h.ldc + n);
              unwritten += is_poison(out[at]) + is_poison(pre[at]);
              product[at] = pre[at] - bias[n];
              out[at] = pre[at] = poison();
            }
        for (size_t i = 0; i < pre.size(); ++i) gaps += !is_poison(out[i]) + !is_poison(pre[i]);
        const GemmCheck r = check_gemm(masks.masked(3), product, masks.masked(3).reference);
        expect(r.rel_error < 1e-5 && unwritten == 0 && r.non_finite == 0 && gaps == 0,
               name + ": against float64, every element written and nothing else");
      }
    }
  const GemmCase small{5, 4, 3};
  const GemmHost h = make_gemm_host(small, seed++);
  std::vector<float> out(h.c_size);
  bool refused = false;
  try {
    gemm_rows(h.args(h.A.data(), h.B.data(), out.data()), 3, 3);
  } catch (const tg::Error&) {
    refused = true;
  }
  expect(refused, "gemm_rows refuses rows [3, 6) of 5");

  // Past what one launch of v5 or v7 (128-row tiles, 65535 on grid y) can do: a bias and ReLU
  // on [65535 * 128 + 5, 2] @ [2, 3], through sgemm() and, as two products summed, through
  // sgemm_batch_sum(). It checks the split, not the kernels (the cases above do), so it runs in
  // the forward schedule only: 16 s here, minutes under AddressSanitizer.
  if (const char* order = std::getenv("TG_EMULATION_SCHEDULE");
      order && std::strcmp(order, "reverse") == 0) {
    std::printf("rows: the %d-row product runs in the forward schedule only\n", 65535 * 128 + 5);
    return failures;
  }
  const int M = 65535 * 128 + 5, N = 3, K = 2;
  std::vector<float> A(static_cast<size_t>(M) * K), B(2 * K * N), C(static_cast<size_t>(M) * N);
  for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>(static_cast<int>(i % 9) - 4);
  for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>(static_cast<int>(i % 5) - 2);
  const float tall_bias[N] = {0.5f, -1.0f, 2.0f};
  GemmArgs tall;
  tall.M = M, tall.N = N, tall.K = K;
  tall.A = A.data(), tall.lda = K, tall.B = B.data(), tall.ldb = N, tall.C = C.data();
  tall.ldc = N, tall.bias = tall_bias, tall.act = tg::Activation::Relu;
  for (bool batch_sum : {false, true}) {
    GemmArgs a = tall;
    if (batch_sum) a.batch = 2, a.stride_b = K * N;  // A @ B0 + A @ B1, one A read twice
    std::fill(C.begin(), C.end(), poison());
    try {
      if (batch_sum)
        sgemm_batch_sum(a, nullptr);
      else
        sgemm(a, nullptr);
    } catch (const tg::Error& e) {
      expect(false, e.what());
      continue;
    }
    int64_t bad = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        float v = 0.0f;  // small integers: exact in any order
        for (int b = 0; b < a.batch; ++b)
          for (int k = 0; k < K; ++k)
            v += A[static_cast<size_t>(m * K + k)] * B[static_cast<size_t>(b * K * N + k * N + n)];
        v += tall_bias[n];
        bad += C[static_cast<size_t>(m * N + n)] != (v < 0.0f ? 0.0f : v);
      }
    expect(bad == 0, std::string(batch_sum ? "sgemm_batch_sum" : "sgemm") + " of " +
                         std::to_string(M) + " rows with a bias and ReLU: " +
                         std::to_string(bad) + " elements wrong");
  }
  return failures;
}

// A buffer of `size` floats that starts 16-byte aligned (plus `shift` floats), with kMargin
// floats of the fill value on either side, so that a write just outside it shows and a read just
// outside it reads NaN.
constexpr size_t kMargin = 32;

struct MarginBuffer {
  std::vector<float> storage;
  size_t begin = 0;  // where the buffer proper starts in storage
  float* data() { return storage.data() + begin; }
  const float* data() const { return storage.data() + begin; }
};

MarginBuffer margin_buffer(size_t size, size_t shift, float fill) {
  MarginBuffer b;
  b.storage.assign(size + 2 * kMargin + 4 + shift, fill);
  const uintptr_t p = reinterpret_cast<uintptr_t>(b.storage.data());  // 4-byte aligned at least
  b.begin = (16 - p % 16) % 16 / sizeof(float) + kMargin + shift;
  return b;
}

// How far `p` lies past `first`, in floats: a group offset.
int64_t float_offset(const float* p, const float* first) {
  return (reinterpret_cast<intptr_t>(p) - reinterpret_cast<intptr_t>(first)) /
         static_cast<intptr_t>(sizeof(float));
}

// A grouped product: its shape and layout, the same for every group.
struct GroupCase {
  int M, N, K;
  bool trans_a = false, trans_b = false;
  int groups = 2, per_group = 1;  // the batch is groups * per_group matrices
  int broadcast = 0;              // 1: one A for each group's matrices (stride_a 0), 2: one B
  bool padded = false;            // leading dimensions and strides padded (see GemmCase)
  // Operands' matrices interleaved row by row (the heads of an [rows, heads * d] tensor):
  // bit 1 A, bit 2 B, bit 4 C.
  int interleaved = 0;
  bool epilogue = false;  // bias + ReLU (the epilogue groups allow)
  int shift = 0;    // floats that group 1's operands chosen by `shifted` are moved off alignment
  int shifted = 7;  // bit 1 A, bit 2 B, bit 4 C (and the C of group 1 run alone)

  int batch() const { return groups * per_group; }
  std::string name() const {
    std::string s = std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N) +
                    (trans_a ? " A^T" : "") + (trans_b ? " B^T" : "") + " " +
                    std::to_string(groups) + " groups x " + std::to_string(per_group);
    if (broadcast) s += broadcast == 1 ? " (A broadcast)" : " (B broadcast)";
    if (interleaved) s += " interleaved " + std::to_string(interleaved);
    if (epilogue) s += " bias+relu";
    if (shift)
      s += " group 1's" + std::string(shifted & 1 ? " A" : "") + (shifted & 2 ? " B" : "") +
           (shifted & 4 ? " C" : "") + " shifted " + std::to_string(shift);
    return s + (padded ? " padded" : " tight");
  }
};

// One stored operand layout: `count` matrices of rows x cols with ld and stride.
struct OperandLayout {
  int64_t rows = 0, cols = 0, ld = 0, stride = 0;
  int count = 1;
  size_t size() const {
    return static_cast<size_t>(std::max<int64_t>(1, (count - 1) * stride + rows * ld));
  }
};

OperandLayout operand_layout(int64_t rows, int64_t cols, int count, bool broadcast,
                             bool interleaved, bool padded) {
  OperandLayout l;
  l.rows = rows, l.cols = cols, l.count = broadcast ? 1 : count;
  l.ld = detail::leading_dim(cols, padded);
  l.stride = broadcast ? 0 : detail::batch_stride(rows, l.ld, padded);
  if (interleaved && !broadcast) {  // matrix i's row r at r * ld + i * stride
    l.stride = l.ld;
    l.ld = count * l.stride + (padded ? 4 : 0);
  }
  return l;
}

// Every group's operands (and outputs), each in its own buffers.
struct GroupedOperands {
  GroupCase c;
  OperandLayout a, b, out;  // out: the layout of C (per group) and of an ungrouped run's C
  std::vector<MarginBuffer> A, B, C, alone;  // [groups]; alone: C of a group run by itself

  // Group g alone: its per_group matrices, writing to `out`.
  GemmArgs group_args(int g, float* out_c) const {
    GemmArgs x;
    x.M = c.M, x.N = c.N, x.K = c.K;
    x.A = A[g].data(), x.lda = a.ld, x.trans_a = c.trans_a;
    x.B = B[g].data(), x.ldb = b.ld, x.trans_b = c.trans_b;
    x.C = out_c, x.ldc = out.ld;
    x.batch = c.per_group, x.stride_a = a.stride, x.stride_b = b.stride, x.stride_c = out.stride;
    return x;
  }
  // Every group in one launch, writing to C[g].
  GemmArgs grouped_args() {
    GemmArgs x = group_args(0, C[0].data());
    x.batch = c.batch();
    x.groups = c.groups;
    for (int g = 0; g < c.groups; ++g) {
      x.group_a[g] = float_offset(A[g].data(), A[0].data());
      x.group_b[g] = float_offset(B[g].data(), B[0].data());
      x.group_c[g] = float_offset(C[g].data(), C[0].data());
    }
    return x;
  }
  // Group g's product i as an ungrouped single product into `out_c` (ldc `ldc`).
  GemmArgs matrix_args(int g, int i, float* out_c, int64_t ldc) const {
    GemmArgs x = group_args(g, out_c);
    x.A += i * a.stride, x.B += i * b.stride;
    x.batch = 1, x.stride_a = x.stride_b = x.stride_c = 0, x.ldc = ldc;
    return x;
  }
  void poison_outputs() {
    for (auto* v : {&C, &alone})
      for (MarginBuffer& buf : *v) std::fill(buf.storage.begin(), buf.storage.end(), poison());
  }
};

GroupedOperands make_grouped(const GroupCase& c, uint64_t seed) {
  GroupedOperands o;
  o.c = c;
  std::mt19937_64 rng(seed);
  o.a = operand_layout(c.trans_a ? c.K : c.M, c.trans_a ? c.M : c.K, c.per_group, c.broadcast == 1,
                       c.interleaved & 1, c.padded);
  o.b = operand_layout(c.trans_b ? c.N : c.K, c.trans_b ? c.K : c.N, c.per_group, c.broadcast == 2,
                       c.interleaved & 2, c.padded);
  o.out = operand_layout(c.M, c.N, c.per_group, false, c.interleaved & 4, c.padded);
  for (int g = 0; g < c.groups; ++g) {
    const auto shift = [&](int which) {
      return g == 1 && (c.shifted & which) ? static_cast<size_t>(c.shift) : size_t{0};
    };
    for (auto [layout, bufs, which] : {std::tuple{&o.a, &o.A, 1}, std::tuple{&o.b, &o.B, 2}}) {
      const std::vector<float> v = detail::fill_operand(layout->rows, layout->cols, layout->ld,
                                                        layout->stride, layout->count, rng);
      bufs->push_back(margin_buffer(layout->size(), shift(which), std::nanf("")));
      std::copy(v.begin(), v.end(), bufs->back().data());
    }
    o.C.push_back(margin_buffer(o.out.size(), shift(4), poison()));
    o.alone.push_back(margin_buffer(o.out.size(), shift(4), poison()));
  }
  return o;
}

// Whether element i of a C buffer's storage lies inside one of its M x N matrices.
std::vector<bool> inside_matrices(const MarginBuffer& buf, const OperandLayout& l, int M, int N) {
  std::vector<bool> inside(buf.storage.size(), false);
  for (int z = 0; z < l.count; ++z)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) inside[buf.begin + z * l.stride + m * l.ld + n] = true;
  return inside;
}

// The float64 product of one matrix pair (dense [M, N]).
std::vector<double> reference_product(const GemmArgs& x) {
  std::vector<double> out(static_cast<size_t>(x.M) * x.N, 0.0);
  for (int m = 0; m < x.M; ++m)
    for (int k = 0; k < x.K; ++k) {
      const double am = x.trans_a ? x.A[int64_t{k} * x.lda + m] : x.A[int64_t{m} * x.lda + k];
      for (int n = 0; n < x.N; ++n) {
        const double bk = x.trans_b ? x.B[int64_t{n} * x.ldb + k] : x.B[int64_t{k} * x.ldb + n];
        out[static_cast<size_t>(m) * x.N + n] += am * bk;
      }
    }
  return out;
}

// Groups (GemmArgs::groups, operands in separate buffers) and sgemm_batch_sum:
// 1. every version that supports() a grouped product (supports() must agree with it on each
//    group alone, also when one group's buffers are off 16-byte alignment): each group's C bit
//    for bit what the same version gives for that group alone (v8's TF32 included), every
//    element written and nothing else (neither the gaps nor a margin around each buffer); 2 and
//    3 groups, 1 and more matrices per group, A or B broadcast, interleaved heads, transposes,
//    K = 0, bias + ReLU;
// 2. grouped products through sgemm() that split-K splits (the attention's per-head weight
//    gradients, one with bias + ReLU, one whose slice size differs from a group's alone): the
//    float64 reference, bit for bit sgemm_split_k() of each group alone with the grouped slice
//    size (and sgemm() of it alone where the slice sizes agree), nothing outside C written;
// 3. check_gemm_args() rejecting groups it must not take;
// 4. sgemm_batch_sum(): 1 and 3 groups, batches of 1 to 12, transposes, broadcast and
//    interleaved operands, K = 0 and K % 4 != 0, with and without the epilogue (bias, ReLU, pre,
//    residual): C bit for bit the float sum, in batch order, of the engine's version's products
//    of each matrix alone, with the epilogue on top; the float64 reference; nothing outside C
//    (and pre) written; a batch of 0 rejected.
// Returns the number of failures.
int check_groups() {
  int failures = 0;
  const auto expect = [&](bool ok, const std::string& what) {
    if (!ok) {
      ++failures;
      std::printf("FAIL groups: %s\n", what.c_str());
    }
  };
  const auto bits_equal = [](float x, float y) { return std::memcmp(&x, &y, sizeof x) == 0; };
  uint64_t seed = 9000;
  std::vector<float> bias(256);
  for (size_t n = 0; n < bias.size(); ++n) bias[n] = 0.25f * static_cast<float>(n % 7) - 0.75f;

  // Each group's C (C[g]) against the same version's run of the group alone (alone[g]): inside
  // the matrices the same bits, written; outside (gaps, margins) still poison.
  const auto compare_groups = [&](GroupedOperands& o, const std::string& name) {
    for (int g = 0; g < o.c.groups; ++g) {
      const std::vector<bool> inside = inside_matrices(o.C[g], o.out, o.c.M, o.c.N);
      int64_t differ = 0, unwritten = 0, outside = 0;
      for (size_t i = 0; i < inside.size(); ++i) {
        const float got = o.C[g].storage[i];
        if (!inside[i]) {
          outside += !is_poison(got);
          continue;
        }
        unwritten += is_poison(got);
        differ += !bits_equal(got, o.alone[g].storage[i - o.C[g].begin + o.alone[g].begin]);
      }
      expect(differ == 0 && unwritten == 0 && outside == 0,
             name + ": group " + std::to_string(g) + ": " + std::to_string(differ) +
                 " elements differ from the group alone, " + std::to_string(unwritten) +
                 " unwritten, " + std::to_string(outside) + " written outside C");
    }
  };

  // 1. Every version, grouped against each group alone.
  const GroupCase version_cases[] = {
      {37, 20, 45, false, false, 2, 1, 0, true},
      {33, 17, 29, true, false, 3, 2, 0, false},
      {19, 24, 16, false, true, 3, 4, 1, true},              // A broadcast, as the heads
      {40, 36, 64, true, true, 2, 3, 2, true},               // B broadcast
      {130, 129, 17, false, false, 2, 1, 0, true, 0, true},  // several tiles, bias + ReLU
      {9, 7, 0, false, false, 3, 2, 0, true},                // K = 0: C = 0
      {37, 8, 16, false, false, 3, 4, 1, false, 4 | 2},      // heads interleaved in B and C
      {21, 12, 20, true, false, 3, 2, 0, true, 4, true},     // C interleaved, bias + ReLU
      // Group 1's buffers off 16-byte alignment: the 16-byte versions must decline.
      {24, 20, 36, false, false, 3, 2, 0, true, 0, false, 1},     // A, B and C
      {24, 20, 36, false, true, 2, 2, 0, true, 0, true, 2, 4},    // C, bias + ReLU
      {24, 20, 36, true, false, 3, 1, 0, true, 0, false, 3, 1},   // A
      {24, 20, 36, false, false, 2, 3, 2, true, 0, false, 1, 2},  // B (broadcast)
  };
  for (const GroupCase& c : version_cases) {
    GroupedOperands o = make_grouped(c, seed++);
    for (int g = 0; g < c.groups; ++g)
      expect(reinterpret_cast<uintptr_t>(o.C[g].data()) % 16 ==
                     (g == 1 && (c.shifted & 4) ? 4u * c.shift % 16 : 0) &&
                 reinterpret_cast<uintptr_t>(o.A[g].data()) % 16 ==
                     (g == 1 && (c.shifted & 1) ? 4u * c.shift % 16 : 0),
             c.name() + ": buffers aligned as intended");
    bool rows_aligned = true;  // every leading dimension and stride a multiple of 4 floats
    for (const OperandLayout* l : {&o.a, &o.b, &o.out})
      rows_aligned = rows_aligned && l->ld % 4 == 0 && l->stride % 4 == 0;
    for (const SgemmVersion& v : sgemm_versions()) {
      std::string name = "v";  // appended, not "v" + ...: GCC 12's -Wrestrict false positive
      name += std::to_string(v.number) + "_" + v.name + " " + c.name();
      GemmArgs grouped = o.grouped_args();
      if (c.epilogue) grouped.bias = bias.data(), grouped.act = tg::Activation::Relu;
      std::vector<GemmArgs> alone;
      bool alone_supported = true;
      for (int g = 0; g < c.groups; ++g) {
        alone.push_back(o.group_args(g, o.alone[g].data()));
        alone.back().bias = grouped.bias, alone.back().act = grouped.act;
        alone_supported = alone_supported && v.supports(alone.back());
      }
      const bool supported = v.supports(grouped);
      expect(supported == alone_supported,
             name + ": supports() " + (supported ? "takes" : "declines") +
                 " the grouped product but " + (alone_supported ? "takes" : "declines") +
                 " its groups alone");
      // The 16-byte versions (v6 and v8) take the 16-byte aligned cases, and decline the others
      // (v7 takes both: 4-byte loads where rows are not aligned).
      if ((v.number == 6 && !c.epilogue) || v.number == 8)
        expect(supported == (c.shift == 0 && rows_aligned),
               name + ": supports() " + (supported ? "takes" : "declines") + " it");
      if (!supported || !alone_supported) continue;
      expect(!rejects([&] { check_gemm_args(grouped, "test"); }), name + ": valid arguments");
      o.poison_outputs();
      v.run(grouped, nullptr);
      for (const GemmArgs& x : alone) v.run(x, nullptr);
      compare_groups(o, name);
    }
  }

  // 2. Through sgemm(): split-K of grouped products.
  const GroupCase split_cases[] = {
      // The attention's per-head weight gradients: dW_Q = x^T @ dQ per head, x shared by the
      // heads, dQ's and dW_Q's heads interleaved; W_Q, W_K, W_V the groups.
      {128, 32, 342, true, false, 3, 4, 1, false, 4 | 2},
      {128, 32, 342, false, true, 3, 4, 0, true, 0, true},  // bias + ReLU
      {37, 33, 2999, false, false, 3, 1, 0, false},         // slice 80 grouped, 48 alone; v5
  };
  for (const GroupCase& c : split_cases) {
    GroupedOperands o = make_grouped(c, seed++);
    const std::string name = "sgemm " + c.name();
    GemmArgs grouped = o.grouped_args();
    if (c.epilogue) grouped.bias = bias.data(), grouped.act = tg::Activation::Relu;
    const int64_t slice = split_k_slice(grouped);
    expect(slice > 0, name + ": is split");
    if (slice <= 0) continue;
    o.poison_outputs();
    sgemm(grouped, nullptr);
    // The float64 reference (with ReLU(v + bias) on top), and nothing outside C.
    for (int g = 0; g < c.groups; ++g) {
      double diff2 = 0, ref2 = 0;
      for (int i = 0; i < c.per_group; ++i) {
        const GemmArgs x = o.matrix_args(g, i, o.C[g].data() + i * o.out.stride, o.out.ld);
        const std::vector<double> ref = reference_product(x);
        for (int m = 0; m < c.M; ++m)
          for (int n = 0; n < c.N; ++n) {
            double want = ref[static_cast<size_t>(m) * c.N + n];
            if (c.epilogue) want = std::max(0.0, want + bias[n]);
            const double got = x.C[int64_t{m} * x.ldc + n];
            diff2 += (got - want) * (got - want);
            ref2 += want * want;
          }
      }
      const double rel = std::sqrt(diff2 / ref2);
      expect(rel < 1e-5, name + ": group " + std::to_string(g) + " relative error " +
                             std::to_string(rel) + " against float64");
    }
    // Each group alone, split in slices of the grouped product's size.
    for (int g = 0; g < c.groups; ++g) {
      GemmArgs x = o.group_args(g, o.alone[g].data());
      x.bias = grouped.bias, x.act = grouped.act;
      sgemm_split_k(x, slice, nullptr);
    }
    compare_groups(o, name + " (each group alone, slices of " + std::to_string(slice) + ")");
    // And sgemm() of each group alone where it picks the same slices.
    GemmArgs group0 = o.group_args(0, o.alone[0].data());
    group0.bias = grouped.bias, group0.act = grouped.act;
    const int64_t slice_alone = split_k_slice(group0);
    expect(c.K != 2999 || (slice == 80 && slice_alone == 48),
           name + ": slices of " + std::to_string(slice) + " grouped and " +
               std::to_string(slice_alone) + " alone, expected 80 and 48");
    expect(c.K != 342 || (slice == 48 && slice_alone == 48),
           name + ": slices of " + std::to_string(slice) + " grouped and " +
               std::to_string(slice_alone) + " alone, expected 48 for both");
    if (slice_alone == slice) {
      for (MarginBuffer& buf : o.alone) std::fill(buf.storage.begin(), buf.storage.end(), poison());
      for (int g = 0; g < c.groups; ++g) {
        GemmArgs x = o.group_args(g, o.alone[g].data());
        x.bias = grouped.bias, x.act = grouped.act;
        sgemm(x, nullptr);
      }
      compare_groups(o, name + " (sgemm() of each group alone)");
    }
  }

  // 3. What check_gemm_args() (and so sgemm()) must reject.
  {
    GroupedOperands o = make_grouped({16, 12, 8, false, false, 3, 2, 0, true}, seed++);
    const GemmArgs valid = o.grouped_args();
    std::vector<float> pre(o.out.size()), residual(o.out.size()), mask(o.a.size());
    const auto rejected = [&](const std::string& what, auto change) {
      GemmArgs bad = valid;
      change(bad);
      const bool rejected_by_check = rejects([&] { check_gemm_args(bad, "test"); });
      expect(rejected_by_check, "check_gemm_args takes " + what);
      // sgemm() checks first (run only then: arguments that pass would be launched).
      if (rejected_by_check) expect(rejects([&] { sgemm(bad, nullptr); }), "sgemm() takes " + what);
    };
    expect(!rejects([&] { check_gemm_args(valid, "test"); }), "valid groups rejected");
    GemmArgs with_bias = valid;
    with_bias.bias = bias.data(), with_bias.act = tg::Activation::Gelu;
    expect(!rejects([&] { check_gemm_args(with_bias, "test"); }),
           "groups with bias and activation rejected");
    rejected("4 groups", [](GemmArgs& a) { a.groups = 4, a.batch = 8; });
    rejected("0 groups", [](GemmArgs& a) { a.groups = 0; });
    rejected("3 groups of a batch of 5", [](GemmArgs& a) { a.batch = 5; });
    rejected("3 groups of a batch of 4", [](GemmArgs& a) { a.batch = 4; });
    rejected("group 0's A offset 4", [](GemmArgs& a) { a.group_a[0] = 4; });
    rejected("group 0's B offset 4", [](GemmArgs& a) { a.group_b[0] = 4; });
    rejected("group 0's C offset 4", [](GemmArgs& a) { a.group_c[0] = 4; });
    rejected("groups with a residual", [&](GemmArgs& a) { a.residual = residual.data(); });
    rejected("groups with pre", [&](GemmArgs& a) { a.pre = pre.data(); });
    rejected("groups with mask_a", [&](GemmArgs& a) { a.mask_a = mask.data(); });
    rejected("groups with mask_b", [&](GemmArgs& a) { a.mask_b = mask.data(); });
    rejected("groups with mask_c", [&](GemmArgs& a) { a.mask_c = residual.data(); });
  }

  // 4. sgemm_batch_sum.
  struct SumCase {
    GroupCase c;
    bool has_bias, relu, has_pre, has_residual;
  };
  const SumCase sum_cases[] = {
      {{37, 21, 45, false, false, 1, 1, 0, false}, false, false, false, false},  // batch 1
      {{37, 24, 45, true, false, 1, 5, 2, true}, true, true, true, true},
      {{33, 17, 29, true, true, 1, 2, 0, false}, false, false, false, true},  // residual alone
      {{20, 36, 0, false, true, 3, 2, 0, true}, true, true, false, true},     // K = 0
      {{20, 36, 0, false, false, 3, 1, 0, false}, false, false, false, false},
      {{33, 17, 29, true, true, 3, 1, 0, false}, false, false, false, false},
      {{24, 20, 43, false, false, 3, 3, 1, true}, true, true, true, false},  // A broadcast
      // The attention's input gradient: dx = the sum over Q, K, V and the heads of
      // dQ_h @ W_Q_h^T (dQ's heads interleaved, W_Q_h head h's columns of W_Q).
      {{64, 128, 32, false, true, 3, 4, 0, false, 1 | 2}, false, false, false, false},
      {{64, 128, 32, false, true, 3, 4, 0, false, 1 | 2}, true, true, true, true},
      {{130, 36, 19, true, false, 3, 2, 0, true}, true, false, false, true},  // bias, no act
  };
  for (const SumCase& s : sum_cases) {
    const GroupCase& c = s.c;
    GroupedOperands o = make_grouped(c, seed++);
    std::string name = "sgemm_batch_sum " + c.name() + (s.has_bias ? " bias" : "") +
                       (s.relu ? " relu" : "") + (s.has_pre ? " pre" : "") +
                       (s.has_residual ? " residual" : "");
    // The one output [M, N] (ldc padded or not), pre laid out as it, a residual.
    const OperandLayout out = operand_layout(c.M, c.N, 1, false, false, c.padded);
    MarginBuffer C = margin_buffer(out.size(), 0, poison());
    MarginBuffer pre = margin_buffer(out.size(), 0, poison());
    MarginBuffer residual = margin_buffer(out.size(), 0, std::nanf(""));
    std::mt19937_64 rng(seed * 3);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (size_t i = 0; i < out.size(); ++i) residual.data()[i] = u(rng);
    GemmArgs args = o.grouped_args();
    args.C = C.data(), args.ldc = out.ld;
    args.stride_c = 7;                                                // unused
    std::fill(args.group_c, args.group_c + GemmArgs::kMaxGroups, 0);  // one C: no group offsets
    args.bias = s.has_bias ? bias.data() : nullptr;
    args.act = s.relu ? tg::Activation::Relu : tg::Activation::Identity;
    args.pre = s.has_pre ? pre.data() : nullptr;
    args.residual = s.has_residual ? residual.data() : nullptr;
    sgemm_batch_sum(args, nullptr);
    // Each product alone, in batch order, with the version the engine picks for it.
    std::vector<std::vector<float>> products;
    std::vector<std::vector<double>> references;
    for (int g = 0; g < c.groups; ++g)
      for (int i = 0; i < c.per_group; ++i) {
        products.emplace_back(static_cast<size_t>(c.M) * c.N, poison());
        const GemmArgs x = o.matrix_args(g, i, products.back().data(), c.N);
        best_sgemm(x).run(x, nullptr);
        references.push_back(reference_product(x));
      }
    int64_t differ = 0, differ_pre = 0;
    double diff2 = 0, ref2 = 0;
    const std::vector<bool> inside = inside_matrices(C, out, c.M, c.N);
    for (int m = 0; m < c.M; ++m)
      for (int n = 0; n < c.N; ++n) {
        const size_t e = static_cast<size_t>(m) * c.N + n;
        const int64_t at = int64_t{m} * out.ld + n;
        float acc = products[0][e];
        double ref = references[0][e];
        for (size_t j = 1; j < products.size(); ++j) acc += products[j][e], ref += references[j][e];
        float want = acc, want_pre = acc;
        if (args.has_epilogue()) {
          want_pre = acc + (s.has_bias ? bias[n] : 0.0f);
          want = s.relu ? (want_pre < 0.0f ? 0.0f : want_pre) : want_pre;
          if (s.has_residual) want = want + residual.data()[at];
          ref += s.has_bias ? bias[n] : 0.0f;
          if (s.relu) ref = std::max(0.0, ref);
          if (s.has_residual) ref += residual.data()[at];
        }
        differ += !bits_equal(C.data()[at], want);
        differ_pre += s.has_pre && !bits_equal(pre.data()[at], want_pre);
        diff2 += (C.data()[at] - ref) * (C.data()[at] - ref);
        ref2 += ref * ref;
      }
    int64_t outside = 0;
    const std::vector<bool> inside_pre = inside_matrices(pre, out, c.M, c.N);
    for (size_t i = 0; i < inside.size(); ++i) outside += !inside[i] && !is_poison(C.storage[i]);
    for (size_t i = 0; i < inside_pre.size(); ++i)
      outside += (!s.has_pre || !inside_pre[i]) && !is_poison(pre.storage[i]);
    const double rel = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
    expect(differ == 0 && differ_pre == 0,
           name + ": " + std::to_string(differ) + " of C and " + std::to_string(differ_pre) +
               " of pre differ from the float sum of the products in batch order");
    expect(rel < 1e-5, name + ": relative error " + std::to_string(rel) + " against float64");
    expect(outside == 0, name + ": " + std::to_string(outside) + " written outside C and pre");
  }
  {
    GroupedOperands o = make_grouped({8, 8, 8, false, false, 1, 1, 0, true}, seed++);
    GemmArgs none = o.grouped_args();
    none.batch = 0;
    expect(rejects([&] { sgemm_batch_sum(none, nullptr); }), "sgemm_batch_sum takes a batch of 0");
    GemmArgs uneven = o.grouped_args();
    uneven.batch = 5, uneven.groups = 3;
    expect(rejects([&] { sgemm_batch_sum(uneven, nullptr); }),
           "sgemm_batch_sum takes 3 groups of a batch of 5");
    GemmArgs four = o.grouped_args();
    four.batch = 8, four.groups = 4;
    expect(rejects([&] { sgemm_batch_sum(four, nullptr); }), "sgemm_batch_sum takes 4 groups");
  }
  return failures;
}

// A forced version (set_forced_sgemm, as TG_CUDA_SGEMM=<number>): best_sgemm() takes it wherever
// it accepts the arguments, measured or not, TF32 or not, and its own choice elsewhere; sgemm()
// then runs it, split-K included (a K of 2999 in slices). Numbers that are no version throw.
// Returns the number of failures.
int check_forced_versions(uint64_t seed) {
  int failures = 0;
  const auto expect = [&](bool ok, const std::string& what) {
    if (!ok) {
      ++failures;
      std::printf("FAIL forced version: %s\n", what.c_str());
    }
  };
  expect(forced_sgemm() == 0, "a version is forced without TG_CUDA_SGEMM");
  const int last = static_cast<int>(sgemm_versions().size());
  for (int number : {-1, last + 1})
    expect(rejects([&] { set_forced_sgemm(number); }), std::to_string(number) + " is rejected");
  for (int number : {9, 10, 6}) {  // unmeasured float32, unmeasured TF32, 16-byte rows only
    const SgemmVersion& v = sgemm_versions()[static_cast<size_t>(number - 1)];
    for (const GemmCase& c :
         {GemmCase{64, 64, 64}, GemmCase{129, 77, 33}, GemmCase{37, 33, 2999}}) {
      const GemmHost h = make_gemm_host(c, seed++);
      std::vector<float> out(h.c_size, poison());
      const GemmArgs args = h.args(h.A.data(), h.B.data(), out.data());
      set_forced_sgemm(0);
      const SgemmVersion& own = best_sgemm(args);
      set_forced_sgemm(number);
      const SgemmVersion& want = v.supports(args) ? v : own;
      std::string name = "v";  // appended, not "v" + ...: GCC 12's -Wrestrict false positive
      name += std::to_string(number) + " on " + c.name();
      expect(best_sgemm(args).number == want.number,
             name + ": best_sgemm() = v" + std::to_string(best_sgemm(args).number) +
                 ", expected v" + std::to_string(want.number));
      sgemm(args, nullptr);
      const GemmCheck r = check_gemm(h, out, h.reference);
      // TF32's inputs really are rounded: more error than float32 gives, within TF32's.
      const bool error_ok = want.tf32 ? r.rel_error > 1e-5 && r.rel_error < 5e-3
                                      : r.rel_error < 1e-5;
      expect(error_ok && r.unwritten == 0 && r.written_gaps == 0,
             name + " through sgemm(): relative error " + std::to_string(r.rel_error) + ", " +
                 std::to_string(r.unwritten) + " unwritten, " + std::to_string(r.written_gaps) +
                 " written outside C");
    }
  }
  set_forced_sgemm(0);
  return failures;
}

// v9's kernel at the other block tilings (mma_tilings.h): every case against float64 at v9's
// tolerance, every element of C written and nothing else, one epilogue combination a case on
// top of the plain product (rotating), operand masks declined; then v9 with a tiling chosen runs
// that tiling's bits where it takes the arguments, and its own where it does not (masks). Returns
// the number of failures.
int check_mma_tilings(const std::vector<GemmCase>& cases, uint64_t seed) {
  int failures = 0;
  const auto expect = [&](bool ok, const std::string& what) {
    if (!ok) {
      ++failures;
      std::printf("FAIL mma tiling: %s\n", what.c_str());
    }
  };
  expect(forced_mma_tiling() == nullptr, "a tiling is chosen without TG_CUDA_MMA_TILING");
  expect(mma_tilings().size() >= 2, "tilings are listed");
  for (const SgemmVersion& t : mma_tilings()) {
    expect(t.number == 9 && !t.tf32 && !t.measured, std::string(t.name) + " is v9, unmeasured");
    for (const GemmCase& c : cases) {
      const std::string name = std::string(t.name) + " on " + c.name();
      const GemmHost h = make_gemm_host(c, seed++);
      std::vector<float> out(h.c_size, poison());
      const GemmArgs args = h.args(h.A.data(), h.B.data(), out.data());
      if (!t.supports(args)) {
        expect(false, name + " declines a plain product");
        continue;
      }
      t.run(args, nullptr);
      const GemmCheck r = check_gemm(h, out, h.reference);
      expect(r.rel_error < 1e-5 && r.unwritten == 0 && r.non_finite == 0 && r.written_gaps == 0,
             name + ": relative error " + std::to_string(r.rel_error) + ", " +
                 std::to_string(r.unwritten) + " unwritten, " + std::to_string(r.written_gaps) +
                 " written outside C");
      const int combo = static_cast<int>(seed % kEpilogueCombos);
      expect(check_epilogue(t, c, h, args, out, EpilogueCombo(combo), seed * 13),
             name + " with the epilogue");
      const Masks masks = make_masks(h, seed * 31);
      expect(!t.supports(masked_args(h, masks, 1 + static_cast<int>(seed % 3), out.data())),
             name + " accepts operand masks");
    }
  }
  // v9 with each tiling chosen, on a plain case and one with both operands transposed.
  const SgemmVersion& v9 = sgemm_versions().at(8);
  for (const SgemmVersion& t : mma_tilings()) {
    for (const GemmCase& c : {GemmCase{129, 77, 33}, GemmCase{70, 45, 50, true, true}}) {
      const std::string name = std::string(t.name) + " chosen, " + c.name();
      const GemmHost h = make_gemm_host(c, seed++);
      std::vector<float> own(h.c_size, poison()), chosen(h.c_size, poison());
      v9.run(h.args(h.A.data(), h.B.data(), own.data()), nullptr);
      t.run(h.args(h.A.data(), h.B.data(), chosen.data()), nullptr);
      set_mma_tiling(t.name);
      std::vector<float> out(h.c_size, poison());
      v9.run(h.args(h.A.data(), h.B.data(), out.data()), nullptr);
      expect(std::memcmp(out.data(), chosen.data(), out.size() * sizeof(float)) == 0,
             name + ": v9 does not give the tiling's bits");
      // With masks v9 keeps its own tiling: the same bits as with none chosen.
      const Masks masks = make_masks(h, seed * 37);
      std::vector<float> masked_chosen(h.c_size, poison()), masked_own(h.c_size, poison());
      v9.run(masked_args(h, masks, 3, masked_chosen.data()), nullptr);
      set_mma_tiling("");
      v9.run(masked_args(h, masks, 3, masked_own.data()), nullptr);
      expect(std::memcmp(masked_chosen.data(), masked_own.data(),
                         masked_own.size() * sizeof(float)) == 0,
             name + ": masked, v9 does not keep its own tiling");
    }
  }
  expect(forced_mma_tiling() == nullptr, "\"\" chooses v9's own tiling");
  expect(rejects([] { set_mma_tiling("64x64"); }), "an unknown tiling is rejected");
  expect(forced_mma_tiling() == nullptr, "a rejected name leaves the choice as it was");
  return failures;
}

}  // namespace

int main() {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<GemmCase> cases = sgemm_cases(/*large=*/false);
  int failures = 0, runs = 0, declined = 0, epilogue_runs = 0, mask_runs = 0;
  uint64_t seed = 1;
  for (const GemmCase& c : cases) {
    const GemmHost h = make_gemm_host(c, seed++);
    const Masks masks = make_masks(h, seed * 31);
    std::vector<float> out(h.c_size);
    for (const SgemmVersion& v : sgemm_versions()) {
      const GemmArgs args = h.args(h.A.data(), h.B.data(), out.data());
      if (!v.supports(args)) {
        ++declined;
        continue;
      }
      std::fill(out.begin(), out.end(), poison());
      v.run(args, nullptr);
      const GemmCheck r = check_gemm(h, out, h.reference);
      ++runs;
      // The epilogue against this version's own plain product; two of the 64 combinations of
      // activation, bias, pre, residual and output mask per case, rotating, so that all of them
      // meet every layout.
      GemmArgs epi = args;
      epi.act = tg::Activation::Relu;
      if (v.supports(epi)) {
        for (int j = 0; j < 2; ++j) {
          const int combo = static_cast<int>((seed * 2 + j) % kEpilogueCombos);
          failures += !check_epilogue(v, c, h, args, out, EpilogueCombo(combo), seed * 7 + j);
          ++epilogue_runs;
        }
      } else if (v.number >= 7 || v.number == 5) {  // they take every argument they take plain
        ++failures;
        std::printf("FAIL v%d_%s %s declines the epilogue\n", v.number, v.name,
                    c.name().c_str());
      }
      // The masks: every combination in the versions that implement them (then one epilogue
      // combination on top of the last, rotating), declined by the others.
      for (int which = 1; which <= 3; ++which) {
        const GemmArgs with_masks = masked_args(h, masks, which, out.data());
        if (!implements_masks(v)) {
          if (v.supports(with_masks)) {
            ++failures;
            std::printf("FAIL v%d_%s %s accepts masks it does not implement\n", v.number, v.name,
                        c.name().c_str());
          }
          continue;
        }
        // They take every argument they take plain, but v7 masks only 16-byte rows (v8's).
        const bool sixteen_byte_rows = sgemm_versions().at(7).supports(with_masks);
        if (v.number == 7 && !sixteen_byte_rows) {
          if (v.supports(with_masks) || !rejects([&] { v.run(with_masks, nullptr); })) {
            ++failures;
            std::printf("FAIL v7_%s %s takes masks on rows not 16-byte aligned\n", v.name,
                        c.name().c_str());
          }
          continue;
        }
        if (!v.supports(with_masks)) {
          ++failures;
          std::printf("FAIL v%d_%s %s declines masks\n", v.number, v.name, c.name().c_str());
          continue;
        }
        std::vector<float> masked_out(h.c_size);
        failures += !check_masks(v, h, masks, which, v.number != 1, masked_out);
        ++mask_runs;
        GemmArgs masked_epi = with_masks;
        masked_epi.act = tg::Activation::Relu;
        if (which == 3 && v.supports(masked_epi)) {
          const int combo = static_cast<int>(seed % kEpilogueCombos);
          failures += !check_epilogue(v, c, h, with_masks, masked_out, EpilogueCombo(combo),
                                      seed * 11);
          ++epilogue_runs;
        }
      }
      const bool ok = r.rel_error < tolerance(v) && r.unwritten == 0 && r.non_finite == 0 &&
                      r.written_gaps == 0;
      if (!ok) {
        ++failures;
        std::printf("FAIL v%d_%s %s: rel_error %.3g, unwritten %lld, non-finite %lld, "
                    "written outside C %lld\n",
                    v.number, v.name, c.name().c_str(), r.rel_error,
                    static_cast<long long>(r.unwritten), static_cast<long long>(r.non_finite),
                    static_cast<long long>(r.written_gaps));
      }
    }
    // The engine's choice: the last measured float32 version (v7, any alignment without masks)
    // where it accepts the arguments, v5 where it does not.
    const GemmArgs args = h.args(h.A.data(), h.B.data(), out.data());
    const int best = best_sgemm(args).number;
    const SgemmVersion& last = last_float32_version();
    const int expected = last.supports(args) ? last.number : 5;
    if (best != expected) {
      ++failures;
      std::printf("FAIL best_sgemm(%s) = v%d, expected v%d\n", c.name().c_str(), best, expected);
    }
    // With an epilogue too: v7 or v5, nothing in between.
    GemmArgs epi = args;
    epi.act = tg::Activation::Relu;
    if (best_sgemm(epi).number != expected) {
      ++failures;
      std::printf("FAIL best_sgemm(%s, epilogue) = v%d, expected v%d\n", c.name().c_str(),
                  best_sgemm(epi).number, expected);
    }
    // With masks too (v6 declines them, so it is never in between either): v7 takes them on
    // 16-byte rows only, the rows v8 accepts.
    const GemmArgs with_masks = masked_args(h, masks, 3, out.data());
    const bool sixteen_byte_rows = sgemm_versions().at(7).supports(with_masks);
    const int expected_masked = sixteen_byte_rows ? expected : 5;
    if (best_sgemm(with_masks).number != expected_masked) {
      ++failures;
      std::printf("FAIL best_sgemm(%s, masks) = v%d, expected v%d\n", c.name().c_str(),
                  best_sgemm(with_masks).number, expected_masked);
    }
  }
  // With TF32 allowed, the tensor-core version where the rows allow it (and v7 where not); off
  // again for the rest.
  if (allow_tf32()) {
    ++failures;
    std::printf("FAIL TF32 is allowed without TG_CUDA_TF32=1\n");
  }
  set_allow_tf32(true);
  for (const GemmCase& c : {GemmCase{64, 64, 64}, GemmCase{129, 77, 33}}) {
    const GemmHost h = make_gemm_host(c, seed++);
    std::vector<float> out(h.c_size);
    const int best = best_sgemm(h.args(h.A.data(), h.B.data(), out.data())).number;
    const int expected = c.K % 4 == 0 ? 8 : 7;
    if (best != expected) {
      ++failures;
      std::printf("FAIL best_sgemm(%s) with TF32 allowed = v%d, expected v%d\n",
                  c.name().c_str(), best, expected);
    }
    // The inputs really are rounded: more error than float32 gives, within TF32's.
    if (best == 8) {
      sgemm(h.args(h.A.data(), h.B.data(), out.data()), nullptr);
      const double error = check_gemm(h, out, h.reference).rel_error;
      if (!(error > 1e-5 && error < 5e-3)) {
        ++failures;
        std::printf("FAIL v8 on %s: relative error %.3g is not TF32's\n", c.name().c_str(), error);
      }
    }
  }
  set_allow_tf32(false);
  failures += check_forced_versions(seed);
  const int split_k_failures = check_split_k();
  failures += split_k_failures;
  const int groups_failures = check_groups();
  failures += groups_failures;
  const int rows_failures = check_row_blocks();
  failures += rows_failures;
  const int tiling_failures = check_mma_tilings(cases, seed);
  failures += tiling_failures;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sgemm host emulation: %d runs (%d with the epilogue, %d with masks) over %zu cases "
              "and %zu versions, %d declined by supports(); split-K %s; groups and batch sum %s; "
              "blocks of rows %s; %zu tilings of v9 %s; %d failed (%.1f s)\n",
              runs, epilogue_runs, mask_runs, cases.size(), sgemm_versions().size(), declined,
              split_k_failures == 0 ? "passed" : "FAILED",
              groups_failures == 0 ? "passed" : "FAILED",
              rows_failures == 0 ? "passed" : "FAILED", mma_tilings().size(),
              tiling_failures == 0 ? "passed" : "FAILED", failures, seconds);
  return failures == 0 ? 0 : 1;
}
