// Every SGEMM version's kernels, compiled as C++ and run on the CPU through tests/cuda_emulation/,
// against a float64 reference on the awkward small cases of tests/sgemm_test_util.h: checks the
// index math (tiles, edges, transposes, batches, 16-byte paths) on machines without a GPU. Build
// it with AddressSanitizer and out-of-bounds reads show too (the operands are exactly sized).
// Then the epilogue (bias, activation, pre-activation output, residual) on the same cases, in
// every version that accepts it (v5, and v7 on 16-byte rows): pre must be the plain product plus
// the bias bit for bit, C must be act(pre) (plus the residual), and nothing outside C or pre may
// be written.
// Then the operand masks (mask_a, mask_b: a ReLU backward's dy read through pre > 0) in every
// version that implements them (v1, v5, v7; the others must decline them): A only, B only and
// both, against a float64 reference of the masked operands; in v5 and v7 also bit for bit
// against the same version's plain product of the masked operands, and with the epilogue on top.
// (v1 masks inside its multiply-add, which the compiler may contract differently.)
// Exit status 0 when every supported case passes.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

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
      return x > 0.0f ? x : 0.0f;
    case tg::Activation::Gelu:
      return static_cast<float>(0.5 * x * (1.0 + std::erf(x * 0.70710678118654752440)));
    case tg::Activation::Square:
      return x * x;
  }
  return x;
}

// One run of version v with the epilogue (act; a bias when has_bias; a pre output when
// want_pre; a residual, laid out as C, when has_residual) on the operands of `base` (which may
// carry masks) against the same version's product without the epilogue `plain` (C's buffer):
// true when it passes.
bool check_epilogue(const SgemmVersion& v, const GemmCase& c, const GemmHost& h,
                    const GemmArgs& base, const std::vector<float>& plain, tg::Activation act,
                    bool has_bias, bool want_pre, bool has_residual, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> bias(static_cast<size_t>(std::max(c.N, 1)));
  for (float& b : bias) b = u(rng);
  std::vector<float> residual(h.c_size);
  for (float& r : residual) r = u(rng);
  std::vector<float> out(h.c_size, poison()), pre(h.c_size, poison());
  GemmArgs args = base;
  args.C = out.data();
  args.bias = has_bias ? bias.data() : nullptr;
  args.act = act;
  args.pre = want_pre ? pre.data() : nullptr;
  args.residual = has_residual ? residual.data() : nullptr;
  if (!v.supports(args)) return true;  // declined: counted by the caller
  v.run(args, nullptr);
  // Expected buffers: pre = plain + bias (the unfused bias_activation's float add, + 0 without a
  // bias), C = act(pre) (+ the residual, a float add afterwards); the gaps stay poisoned.
  int64_t bad_pre = 0, bad_c = 0;
  for (int z = 0; z < c.batch; ++z)
    for (int m = 0; m < c.M; ++m)
      for (int n = 0; n < c.N; ++n) {
        const size_t at = static_cast<size_t>(z * h.stride_c + m * h.ldc + n);
        const float want_pre_v = plain[at] + (has_bias ? bias[static_cast<size_t>(n)] : 0.0f);
        const float activated = activate(act, want_pre_v);
        const float want_c = has_residual ? activated + residual[at] : activated;
        if (want_pre && std::memcmp(&pre[at], &want_pre_v, sizeof(float)) != 0) ++bad_pre;
        if (std::memcmp(&out[at], &want_c, sizeof(float)) != 0) ++bad_c;
        out[at] = poison();  // so that the scan below finds only writes outside C
        pre[at] = poison();
      }
  int64_t gaps = 0;
  for (size_t i = 0; i < h.c_size; ++i) gaps += !is_poison(out[i]) + !is_poison(pre[i]);
  if (bad_pre == 0 && bad_c == 0 && gaps == 0) return true;
  std::printf("FAIL v%d_%s %s epilogue act %d bias %d pre %d residual %d masks %d%d: %lld of pre "
              "and %lld of C differ from the unfused result, %lld written outside\n",
              v.number, v.name, c.name().c_str(), static_cast<int>(act), has_bias, want_pre,
              has_residual,
              base.mask_a != nullptr, base.mask_b != nullptr, static_cast<long long>(bad_pre),
              static_cast<long long>(bad_c), static_cast<long long>(gaps));
  return false;
}

// Relative error allowed against float64: float32 arithmetic, or inputs rounded to TF32 (10
// mantissa bits: each rounding up to 2^-11 relative) in the tensor-core versions.
double tolerance(const SgemmVersion& v) { return v.tf32 ? 5e-3 : 1e-5; }

// The version best_sgemm() picks for aligned rows while TF32 is not allowed.
const SgemmVersion& last_float32_version() {
  const SgemmVersion* last = nullptr;
  for (const SgemmVersion& v : sgemm_versions())
    if (!v.tf32) last = &v;
  return *last;
}

// The versions that implement the operand masks; every other one must decline them.
bool implements_masks(const SgemmVersion& v) {
  return v.number == 1 || v.number == 5 || v.number == 7 || v.number == 8;
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
  expect(split_k_slice(args_of(3830, 512, 128, 1)) == 0, "K = 128 is not split");
  expect(split_k_slice(args_of(1024, 1024, 4096, 1)) == 2048, "64 tiles in two slices");
  expect(split_k_slice(args_of(1024, 2048, 4096, 1)) == 0, "128 tiles are not split");
  expect(split_k_slice(args_of(8, 8, 4096, 20000)) == 0, "more entries than one launch holds");

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
        // residual.
        std::vector<float> bias(static_cast<size_t>(c.N)), pre(h.c_size, poison());
        std::vector<float> residual(h.c_size);
        for (int n = 0; n < c.N; ++n) bias[n] = 0.25f * static_cast<float>(n % 7) - 0.75f;
        for (size_t i = 0; i < residual.size(); ++i)
          residual[i] = 0.125f * static_cast<float>(i % 11) - 0.5f;
        GemmArgs epi = h.args(h.A.data(), h.B.data(), again.data());
        epi.bias = bias.data(), epi.act = tg::Activation::Relu, epi.pre = pre.data();
        epi.residual = residual.data();
        std::fill(again.begin(), again.end(), poison());
        sgemm(epi, nullptr);
        int64_t bad = 0;
        for (int z = 0; z < c.batch; ++z)
          for (int m = 0; m < c.M; ++m)
            for (int n = 0; n < c.N; ++n) {
              const size_t at = static_cast<size_t>(z * h.stride_c + m * h.ldc + n);
              const float v = out[at] + bias[n], y = (v > 0 ? v : 0.0f) + residual[at];
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
      // The epilogue against this version's own plain product; two of the 32 combinations of
      // activation, bias, pre and residual per case, rotating, so that all of them meet every
      // layout.
      GemmArgs epi = args;
      epi.act = tg::Activation::Relu;
      if (v.supports(epi)) {
        for (int j = 0; j < 2; ++j) {
          const int combo = static_cast<int>((seed * 2 + j) % 32);
          failures += !check_epilogue(v, c, h, args, out, kActivations[combo % 4],
                                      (combo / 4) % 2 != 0, (combo / 8) % 2 != 0, combo / 16 != 0,
                                      seed * 7 + j);
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
        if (!v.supports(with_masks)) {  // they take every argument they take plain
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
          const int combo = static_cast<int>(seed % 32);
          failures += !check_epilogue(v, c, h, with_masks, masked_out, kActivations[combo % 4],
                                      (combo / 4) % 2 != 0, (combo / 8) % 2 != 0,
                                      combo / 16 != 0, seed * 11);
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
    // The engine's choice: a 16-byte version where the rows allow it, v5 where they do not.
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
    // With masks too (v6 declines them, so it is never in between either).
    const GemmArgs with_masks = masked_args(h, masks, 3, out.data());
    if (best_sgemm(with_masks).number != expected) {
      ++failures;
      std::printf("FAIL best_sgemm(%s, masks) = v%d, expected v%d\n", c.name().c_str(),
                  best_sgemm(with_masks).number, expected);
    }
  }
  // With TF32 allowed, the tensor-core version where the rows allow it (and v5 where not); off
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
    const int expected = c.K % 4 == 0 ? 8 : 5;
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
  const int split_k_failures = check_split_k();
  failures += split_k_failures;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sgemm host emulation: %d runs (%d with the epilogue, %d with masks) over %zu cases "
              "and %zu versions, %d declined by supports(); split-K %s; %d failed (%.1f s)\n",
              runs, epilogue_runs, mask_runs, cases.size(), sgemm_versions().size(), declined,
              split_k_failures == 0 ? "passed" : "FAILED", failures, seconds);
  return failures == 0 ? 0 : 1;
}
