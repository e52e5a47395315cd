// What the CUDA tests that compare a GPU primitive with the CPU's share: seeded values of any
// dtype (whole numbers where ties matter), and the comparison of a GPU result with the CPU's.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/factories.h"
#include "core/tensor.h"
#include "op_test_util.h"

namespace tg::testing {

// Values of `shape` drawn uniformly from [lo, hi) by a fixed seed; whole numbers when `whole`, so
// that comparisons, ties of max and argmax, and int64 inputs have equal elements to find.
inline Tensor random_values(const Shape& shape, DType dtype, double lo, double hi, uint32_t seed,
                            bool whole = false) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  const int64_t n = numel(shape);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& e : v) e = whole ? std::floor(dist(rng)) : dist(rng);
  return from_vector(v, {n}).reshape(shape).to(dtype);
}

// `got` (on cuda:0) against `want` (the CPU's): the same shape and dtype, int64 values equal,
// and float values NaN exactly where want has one and otherwise equal (tolerance 0) or within
// that relative error over the whole tensor.
inline void check_matches_cpu(const Tensor& got, const Tensor& want, double tolerance) {
  REQUIRE(got.device() == Device::cuda(0));
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == want.dtype());
  if (want.dtype() == DType::Int64) {
    CHECK(got.to_vector<int64_t>() == want.to_vector<int64_t>());
    return;
  }
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  int64_t nan_mismatches = 0, differ = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    nan_mismatches += std::isnan(g[i]) != std::isnan(w[i]);
    differ += !(g[i] == w[i] || (std::isnan(g[i]) && std::isnan(w[i])));
  }
  CHECK(nan_mismatches == 0);
  if (tolerance == 0) CHECK(differ == 0);
  else CHECK(relative_error(g, w) < tolerance);
}

}  // namespace tg::testing
