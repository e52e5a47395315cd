// Random number tests: Philox4x32-10 known answers, Generator counters, reproducibility across
// seeds and thread counts, distribution moments, and dropout masks.
#include <catch2/catch.hpp>
#include <omp.h>

#include <array>
#include <cmath>
#include <cstring>

#include "kernels/backend.h"
#include "kernels/random_element.h"
#include "tinygrok.h"

using namespace tg;

namespace {

// Philox4x32-10 with the full four-word counter and two-word key, written from the Random123
// specification (key bumped before every round but the first), to check the library's version,
// which fixes counter words 2 and 3 at zero.
std::array<uint32_t, 4> philox_reference(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += 0x9E3779B9u;
      key[1] += 0xBB67AE85u;
    }
    const uint64_t p0 = uint64_t{0xD2511F53u} * ctr[0];
    const uint64_t p1 = uint64_t{0xCD9E8D57u} * ctr[2];
    ctr = {static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<uint32_t>(p0)};
  }
  return ctr;
}

std::array<uint32_t, 4> library_philox(uint64_t seed, uint64_t counter) {
  std::array<uint32_t, 4> out{};
  philox4x32_10(seed, counter, out.data());
  return out;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), ca.numel() * dtype_size(ca.dtype())) == 0;
}

struct Moments {
  double mean, var, min, max;
};
Moments moments(const std::vector<double>& v) {
  double sum = 0, lo = INFINITY, hi = -INFINITY;
  for (double x : v) {
    sum += x;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  const double mean = sum / static_cast<double>(v.size());
  double sq = 0;
  for (double x : v) sq += (x - mean) * (x - mean);
  return {mean, sq / static_cast<double>(v.size()), lo, hi};
}

// Restores the OpenMP thread count when a test ends, even when an assertion throws.
struct ThreadCountRestorer {
  int saved = omp_get_max_threads();
  ~ThreadCountRestorer() { omp_set_num_threads(saved); }
};

}  // namespace

TEST_CASE("random: philox4x32_10 matches the Random123 known answers", "[random]") {
  // Random123 kat_vectors: counter 0 / key 0.
  const std::array<uint32_t, 4> zero = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
  CHECK(library_philox(0, 0) == zero);

  // The full vectors need counter words 2 and 3, which the library fixes at zero; they validate
  // the reference, which then checks the library over many (seed, counter) pairs.
  CHECK(philox_reference({0, 0, 0, 0}, {0, 0}) == zero);
  CHECK(philox_reference({~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}) ==
        std::array<uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  CHECK(philox_reference({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                         {0xa4093822u, 0x299f31d0u}) ==
        std::array<uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});

  const uint64_t seeds[] = {0, 1, 42, 0xa4093822299f31d0ull, ~0ull};
  const uint64_t counters[] = {0, 1, 7, 0x85a308d3243f6a88ull, ~0ull};
  for (uint64_t seed : seeds)
    for (uint64_t counter : counters) {
      INFO("seed " << seed << " counter " << counter);
      CHECK(library_philox(seed, counter) ==
            philox_reference({static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                              0, 0},
                             {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}));
    }

  // random_word(i) is word i % 4 of block counter + i / 4.
  CHECK(random_word(5, 10, 0) == library_philox(5, 10)[0]);
  CHECK(random_word(5, 10, 6) == library_philox(5, 11)[2]);
}

TEST_CASE("random: the same seed gives the same values, different seeds differ", "[random]") {
  Generator g1(1234), g2(1234), g3(1235);
  const Tensor a = rand({1000}, g1), b = rand({1000}, g2), c = rand({1000}, g3);
  CHECK(bitwise_equal(a, b));
  CHECK_FALSE(bitwise_equal(a, c));
  int same = 0;
  const auto va = a.to_vector<float>(), vc = c.to_vector<float>();
  for (size_t i = 0; i < va.size(); ++i) same += va[i] == vc[i];
  CHECK(same < 5);  // not merely shifted or partly equal

  Generator n1(9), n2(9);
  CHECK(bitwise_equal(randn({333}, n1), randn({333}, n2)));
}

TEST_CASE("random: consecutive draws differ and advance the generator offset", "[random]") {
  Generator gen(7);
  CHECK(gen.seed() == 7);
  CHECK(gen.offset() == 0);
  const Tensor first = rand({10}, gen);
  CHECK(gen.offset() == 3);  // 10 words round up to 3 Philox blocks of 4
  const Tensor second = rand({10}, gen);
  CHECK(gen.offset() == 6);
  CHECK_FALSE(bitwise_equal(first, second));
  randn({4}, gen);
  CHECK(gen.offset() == 7);

  // Two draws are the same numbers as one draw of both, when the first fills whole blocks.
  Generator split(11), whole(11);
  const Tensor p = rand({8}, split), q = rand({8}, split);
  const Tensor all = rand({16}, whole);
  CHECK(bitwise_equal(p, all.slice(0, 0, 8)));
  CHECK(bitwise_equal(q, all.slice(0, 8, 16)));

  // set_state rewinds: (seed, offset) alone determines the next draw.
  Generator again(0);
  again.set_state(7, 3);
  CHECK(bitwise_equal(rand({10}, again), second));
}

TEST_CASE("random: values do not depend on the thread count", "[random]") {
  ThreadCountRestorer restore;
  const Shape shape{100003};  // many parallel chunks, not a multiple of 4
  std::vector<Tensor> uniform_draws, normal_draws, mask_draws;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    Generator gen(2024);
    uniform_draws.push_back(rand(shape, gen));
    normal_draws.push_back(randn(shape, gen, DType::Float64));
    mask_draws.push_back(dropout(ones(shape), 0.25, true, gen));
  }
  for (size_t i = 1; i < uniform_draws.size(); ++i) {
    CHECK(bitwise_equal(uniform_draws[0], uniform_draws[i]));
    CHECK(bitwise_equal(normal_draws[0], normal_draws[i]));
    CHECK(bitwise_equal(mask_draws[0], mask_draws[i]));
  }
}

TEST_CASE("random: uniform draws lie in [0, 1) with mean 1/2 and variance 1/12", "[random]") {
  Generator gen(31337);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    const Tensor u = rand({100000}, gen, dtype);
    CHECK(u.dtype() == dtype);
    const Moments m = moments(u.to_vector<double>());
    CHECK(m.min >= 0);
    CHECK(m.max < 1);
    CHECK(m.min < 1e-3);
    CHECK(m.max > 1 - 1e-3);
    CHECK(m.mean == Approx(0.5).margin(0.005));
    CHECK(m.var == Approx(1.0 / 12).margin(0.002));
  }
}

TEST_CASE("random: float64 draws use more than float32's 24 bits", "[random]") {
  Generator gen(5);
  const std::vector<double> d = rand({1000}, gen, DType::Float64).to_vector<double>();
  int finer = 0;
  for (double x : d) finer += static_cast<double>(static_cast<float>(x)) != x;
  CHECK(finer > 900);

  Generator g32(5);
  for (float x : rand({1000}, g32).to_vector<float>())
    REQUIRE(x * 16777216.0f == std::floor(x * 16777216.0f));  // multiples of 2^-24
}

TEST_CASE("random: normal draws have mean 0 and std 1; normal() shifts and scales", "[random]") {
  Generator gen(77);
  const Moments z = moments(randn({100000}, gen).to_vector<double>());
  CHECK(z.mean == Approx(0).margin(0.01));
  CHECK(std::sqrt(z.var) == Approx(1).margin(0.01));
  CHECK(z.min < -3.5);  // the tails are there
  CHECK(z.max > 3.5);

  const Moments n = moments(normal({100000}, 3, 0.5, gen, DType::Float64).to_vector<double>());
  CHECK(n.mean == Approx(3).margin(0.01));
  CHECK(std::sqrt(n.var) == Approx(0.5).margin(0.005));
  CHECK_THROWS_AS(normal({2}, 0, -1, gen), Error);
}

TEST_CASE("random: uniform(low, high) stays in range", "[random]") {
  Generator gen(3);
  const Moments m = moments(uniform({100000}, -2, 5, gen).to_vector<double>());
  CHECK(m.min >= -2);
  CHECK(m.max < 5);
  CHECK(m.min < -1.99);
  CHECK(m.max > 4.99);
  CHECK(m.mean == Approx(1.5).margin(0.03));
  CHECK(m.var == Approx(49.0 / 12).margin(0.05));

  const Moments narrow = moments(uniform({1000}, 10, 10.5, gen, DType::Float64).to_vector<double>());
  CHECK(narrow.min >= 10);
  CHECK(narrow.max < 10.5);
  CHECK_THROWS_AS(uniform({2}, 1, 0, gen), Error);
  CHECK_THROWS_AS(rand({2}, gen, DType::Int64), Error);
}

TEST_CASE("random: float32 uniform never rounds up to high", "[random]") {
  // At seed 0, counter 2330056, word 2 is 0xffffff45: U = 1 - 2^-24, the largest uniform_float.
  // 1 + (1 - 2^-24) lies halfway between the two floats around it and rounds to 2.0f, so a
  // plain low + (high - low) * U would return high itself.
  Generator gen;
  gen.set_state(0, 2330056);
  const std::vector<float> u = uniform({4}, 1, 2, gen).to_vector<float>();
  CHECK(u[2] < 2.0f);
  CHECK(u[2] == std::nextafter(2.0f, 1.0f));
  gen.set_state(0, 2330056);
  CHECK(rand({4}, gen).to_vector<float>()[2] == 1.0f - 1.0f / 16777216.0f);
  gen.set_state(0, 2330056);
  const std::vector<double> d = uniform({4}, 1, 2, gen, DType::Float64).to_vector<double>();
  CHECK(d[2] < 2.0);
  CHECK(d[2] > 2.0 - 1e-7);
}

TEST_CASE("random: manual_seed makes the default generator reproducible", "[random]") {
  manual_seed(42);
  CHECK(default_generator().seed() == 42);
  CHECK(default_generator().offset() == 0);
  const Tensor a = rand({64});
  const Tensor a2 = randn({5});
  CHECK(default_generator().offset() == 18);
  manual_seed(42);
  CHECK(bitwise_equal(rand({64}), a));
  CHECK(bitwise_equal(randn({5}), a2));
  manual_seed(43);
  CHECK_FALSE(bitwise_equal(rand({64}), a));

  // The default generator is an ordinary Generator with the same seed.
  Generator explicit_gen(42);
  CHECK(bitwise_equal(rand({64}, explicit_gen), a));
}

TEST_CASE("random: dropout keeps about 1-p of the elements, scaled by 1/(1-p)", "[random]") {
  const double p = 0.3;
  const Tensor x = full({100000}, 2.0);
  Generator gen(8);
  const Tensor y = dropout(x, p, true, gen);
  CHECK(gen.offset() == 25000);
  const std::vector<float> v = y.to_vector<float>();
  const float kept_value = 2.0f * static_cast<float>(1.0 / (1.0 - p));
  int64_t kept = 0;
  for (float e : v) {
    if (e != 0) {
      ++kept;
      REQUIRE(e == kept_value);
    }
  }
  CHECK(static_cast<double>(kept) / static_cast<double>(v.size()) == Approx(1 - p).margin(0.01));
  // The expectation is preserved.
  CHECK(y.mean().item() == Approx(2.0).margin(0.03));

  // The same generator state gives the same mask; the next draw a different one.
  Generator same(8);
  CHECK(bitwise_equal(dropout(x, p, true, same), y));
  CHECK_FALSE(bitwise_equal(dropout(x, p, true, same), y));

  // The mask is the same for any input of the shape: dropout(x) == x * dropout(1).
  Generator g1(21), g2(21);
  const Tensor r = randn({1000}, g1);
  g2.reserve(1000);
  CHECK(bitwise_equal(dropout(r, 0.5, true, g1) ,
                      r * dropout(ones({1000}), 0.5, true, g2)));
}

TEST_CASE("random: dropout in eval mode (and p = 0) is the identity", "[random]") {
  const Tensor x = from_vector<float>({1, 2, 3, 4});
  Generator gen(1);
  const Tensor eval = dropout(x, 0.5, /*training=*/false, gen);
  CHECK(eval.to_vector<float>() == x.to_vector<float>());
  CHECK(eval.same(x));
  CHECK(gen.offset() == 0);  // no numbers were drawn
  CHECK(dropout(x, 0.0, true, gen).to_vector<float>() == x.to_vector<float>());
  CHECK_THROWS_AS(dropout(x, 1.0, true, gen), Error);
  CHECK_THROWS_AS(dropout(x, -0.1, true, gen), Error);
}

TEST_CASE("random: dropout backward multiplies by the same mask", "[random]") {
  Generator gen(99);
  Tensor x = full({1000}, 3.0, DType::Float64).requires_grad_();
  const Tensor y = dropout(x, 0.4, true, gen);
  y.sum().backward();
  const std::vector<double> g = x.grad().to_vector<double>();
  const std::vector<double> out = y.to_vector<double>();
  int zeros_seen = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    REQUIRE(g[i] == Approx(out[i] / 3.0));
    zeros_seen += g[i] == 0;
  }
  CHECK(zeros_seen > 300);
  CHECK(zeros_seen < 500);
}

TEST_CASE("random: the CPU's blockwise dropout mask equals the per-element reference",
          "[random]") {
  // kernels/cpu/memory.cpp draws one Philox block per four mask elements; random_element is the
  // reference. Awkward sizes and counters put thread chunks and blocks out of step.
  Backend& cpu = backend_for(Device::cpu());
  for (int64_t n : {1, 3, 5, 4097, 10001})
    for (uint64_t counter : {0ull, 7ull}) {
      for (DType dtype : {DType::Float32, DType::Float64}) {
        Tensor mask = Tensor::empty({n}, dtype);
        cpu.fill_random(mask, RandomKind::DropoutMask, 42, counter, 0.3, 0);
        const std::vector<double> got = mask.to_vector<double>();
        for (int64_t i = 0; i < n; ++i) {
          const double want = dtype == DType::Float32
              ? static_cast<double>(random_element<float>(RandomKind::DropoutMask, 42, counter, i, 0.3, 0))
              : random_element<double>(RandomKind::DropoutMask, 42, counter, i, 0.3, 0);
          if (got[static_cast<size_t>(i)] != want) FAIL("n " << n << " counter " << counter << " i " << i);
        }
      }
    }
}
