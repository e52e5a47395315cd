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

// The relative error a GPU result may have against the CPU's, over the whole tensor: float32
// rounding, or much less for float64 (the kernels sum in other orders than the CPU).
inline double tolerance_for(DType dtype) { return dtype == DType::Float32 ? 1e-5 : 1e-12; }

// `got` (on cuda:0) against `want` (the CPU's, or another GPU result): the same shape and dtype,
// int64 values equal, and float values non-finite exactly where want's are (NaN where it has
// NaN, an infinity of the same sign where it has one) and otherwise equal (tolerance 0) or
// within that relative error over the finite elements.
inline void check_matches_cpu(const Tensor& got, const Tensor& want, double tolerance) {
  REQUIRE(got.device() == Device::cuda(0));
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == want.dtype());
  if (want.dtype() == DType::Int64) {
    CHECK(got.to_vector<int64_t>() == want.to_vector<int64_t>());
    return;
  }
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  std::vector<double> g_finite, w_finite;
  int64_t nonfinite_mismatches = 0, differ = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const bool same = g[i] == w[i] || (std::isnan(g[i]) && std::isnan(w[i]));
    differ += !same;
    if (std::isfinite(g[i]) && std::isfinite(w[i])) {
      g_finite.push_back(g[i]);
      w_finite.push_back(w[i]);
    } else {
      nonfinite_mismatches += !same;
    }
  }
  CHECK(nonfinite_mismatches == 0);
  if (tolerance == 0) CHECK(differ == 0);
  else CHECK(relative_error(g_finite, w_finite) < tolerance);
}

}  // namespace tg::testing
