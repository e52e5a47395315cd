// Every SGEMM version's kernels, compiled as C++ and run on the CPU through tests/cuda_emulation/,
// against a float64 reference on the awkward small cases of tests/sgemm_test_util.h: checks the
// index math (tiles, edges, transposes, batches, 16-byte paths) on machines without a GPU. Build
// it with AddressSanitizer and out-of-bounds reads show too (the operands are exactly sized).
// Exit status 0 when every supported case passes.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/cuda/sgemm/sgemm.h"
#include "sgemm_test_util.h"

using namespace tg::cuda;
using namespace tg::testing;

int main() {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<GemmCase> cases = sgemm_cases(/*large=*/false);
  int failures = 0, runs = 0, declined = 0;
  uint64_t seed = 1;
  for (const GemmCase& c : cases) {
    const GemmHost h = make_gemm_host(c, seed++);
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
      const bool ok = r.rel_error < 1e-5 && r.unwritten == 0 && r.non_finite == 0 &&
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
    const SgemmVersion& last = sgemm_versions().back();
    const int expected = last.supports(args) ? last.number : 5;
    if (best != expected) {
      ++failures;
      std::printf("FAIL best_sgemm(%s) = v%d, expected v%d\n", c.name().c_str(), best, expected);
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sgemm host emulation: %d runs over %zu cases and %zu versions, %d declined by "
              "supports(), %d failed (%.1f s)\n",
              runs, cases.size(), sgemm_versions().size(), declined, failures, seconds);
  return failures == 0 ? 0 : 1;
}
