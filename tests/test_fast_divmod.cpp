// FastDivmod (kernels/fast_divmod.h) against the division operators: every divisor's edges, the
// largest numerators and divisors, powers of two and their neighbours, and random pairs.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/fast_divmod.h"

using tg::FastDivmod;

namespace {

// Checks n / d and n % d for every n in `numerators` below 2^31.
void check_divisor(int64_t d, const std::vector<int64_t>& numerators) {
  const FastDivmod by(d);
  for (int64_t n : numerators) {
    if (n < 0 || n > INT32_MAX) continue;
    const auto un = static_cast<uint32_t>(n);
    const uint32_t q = by.div(un);
    if (q != n / d || by.mod(un, q) != n % d) {
      INFO("n " << n << " d " << d);
      CHECK(q == n / d);
      CHECK(by.mod(un, q) == n % d);
    }
  }
}

std::vector<int64_t> edges_of(int64_t d) {
  std::vector<int64_t> n = {0, 1, 2, d - 1, d, d + 1, 2 * d - 1, 2 * d, 2 * d + 1,
                            INT32_MAX, INT32_MAX - 1, INT32_MAX - d, INT32_MAX / d * d,
                            INT32_MAX / d * d - 1};
  return n;
}

}  // namespace

TEST_CASE("FastDivmod divides as / and % do, for numerators below 2^31", "[fast_divmod]") {
  std::vector<int64_t> divisors;
  for (int64_t d = 1; d <= 4096; ++d) divisors.push_back(d);
  for (int shift = 12; shift <= 31; ++shift) {
    const int64_t p = int64_t{1} << shift;
    for (int64_t d : {p - 3, p - 1, p, p + 1, p + 3})
      if (d <= INT32_MAX) divisors.push_back(d);
  }
  // The split-K sum's and the scatter-add's divisors at the nanda step: columns, M x N, widths.
  for (int64_t d : {113, 128, 512, 3830 * 128, 3830 * 512, 342 * 128, 11490})
    divisors.push_back(d);
  std::mt19937_64 rng(1400);
  for (int k = 0; k < 2000; ++k) divisors.push_back(1 + static_cast<int64_t>(rng() % INT32_MAX));
  for (int64_t d : divisors) {
    std::vector<int64_t> n = edges_of(d);
    for (int k = 0; k < 64; ++k) n.push_back(static_cast<int64_t>(rng() % (int64_t{1} << 31)));
    check_divisor(d, n);
  }
  // Every numerator up to a few multiples of small divisors.
  for (int64_t d = 1; d <= 64; ++d) {
    std::vector<int64_t> n;
    for (int64_t i = 0; i < 70 * d; ++i) n.push_back(i);
    check_divisor(d, n);
  }
  CHECK(FastDivmod(1).div(INT32_MAX) == static_cast<uint32_t>(INT32_MAX));
  CHECK(FastDivmod(INT32_MAX).div(INT32_MAX) == 1);
  CHECK(FastDivmod(INT32_MAX).div(INT32_MAX - 1) == 0);
}

TEST_CASE("FastDivmod refuses divisors outside [1, 2^31 - 1]", "[fast_divmod]") {
  CHECK_THROWS_WITH(FastDivmod(0), Catch::Contains("divisor 0 is outside [1, 2^31 - 1]"));
  CHECK_THROWS_WITH(FastDivmod(-5), Catch::Contains("divisor -5"));
  CHECK_THROWS_WITH(FastDivmod(int64_t{1} << 31), Catch::Contains("outside"));
}
